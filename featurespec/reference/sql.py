"""Translate the Flink SQL snippets of feature declarations into Python functions over an engagement row.

Feature sets declare their filters and summed values as Flink SQL (`Aggregation.where`, `.expression`,
`.value_sql()`); the Python peers evaluate the very same text. The translator accepts the small subset
those snippets use and refuses anything else with `SqlTranslationError`, so a new construct fails at
start-up instead of being evaluated wrongly:

    literals         1, 0.95, 1.0E0, 'watch', TRUE, FALSE, NULL
    columns          any ENGAGEMENT_ROW_FIELDS name except the ARRAY ones, `hashtags` and `arms` (optionally `quoted`)
    arithmetic       + - * /, unary minus
    comparisons      = <> != < <= > >=, IS [NOT] NULL, [NOT] IN (literal, ...)
    logic            AND, OR (NOT is refused: see below)
    functions        CAST(x AS DOUBLE | FLOAT | BIGINT | INT), LEAST(...), GREATEST(...), and the scalar
                     functions jobs register for derived columns (`FUNCTIONS`, e.g. COMMENT_SENTIMENT)
    derived columns  a feature set's `DerivedColumn`s, passed as `derived` (appended after the row's columns)
    conditionals     CASE WHEN c THEN v [WHEN ...] [ELSE v] END

NULL follows SQL: arithmetic, CAST, LEAST and GREATEST with a NULL operand give NULL (None), and a
comparison with NULL is not true. A predicate compiles to "is it TRUE?", which is exact for AND, OR and
CASE WHEN; NOT would need three-valued logic, hence its absence. Differences from Flink, none of which
the declared features reach: a decimal literal is a float64 here (Flink: exact DECIMAL); an integer
division by zero gives NULL here (Flink fails the job); a DOUBLE division by zero gives ±inf or NaN in
both.

>>> plays = compile_predicate("event_type = 'watch' AND video_duration_ms > 0")
>>> row = engagement_row(event_type="watch", video_duration_ms=15_000)
>>> plays(row), plays(engagement_row(event_type="watch"))
(True, False)
>>> compile_value("LEAST(CAST(watch_ms AS DOUBLE) / video_duration_ms, 1.0)")(
...     engagement_row(watch_ms=30_000, video_duration_ms=15_000))
1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from featurespec.reference.parse import (
    COLUMN_INDEX,
    COLUMN_TYPE,
    FUNCTIONS,
    Row,
    SqlTranslationError,
    engagement_row,
    parse,
)

__all__ = [
    "COLUMN_INDEX",
    "FUNCTIONS",
    "SqlTranslationError",
    "compile_predicate",
    "compile_value",
    "engagement_row",
]


def _fdiv(a: float, b: float) -> float:
    """DOUBLE division as Java does it: x / 0 is ±inf, 0 / 0 is NaN."""
    try:
        return a / b
    except ZeroDivisionError:
        return math.nan if a == 0 or a != a else math.copysign(math.inf, a) * math.copysign(1.0, b)


def _idiv(a: int, b: int) -> int | None:
    """BIGINT division truncates toward zero; by zero Flink fails the job, here it is NULL."""
    if b == 0:
        return None
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def _least(*args: Any) -> Any:
    return None if any(a is None for a in args) else min(args)


def _greatest(*args: Any) -> Any:
    return None if any(a is None for a in args) else max(args)


_HELPERS = {"_fdiv": _fdiv, "_idiv": _idiv, "_least": _least, "_greatest": _greatest}

_HELPERS.update({f"_fn_{name.lower()}": function for name, (function, _, _) in FUNCTIONS.items()})


@dataclass(frozen=True, slots=True)
class _Code:
    src: str
    type: str  # int, float, str, bool (a predicate: "is it TRUE"), null
    nullable: bool


class _Generator:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.temps = 0

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def fail(self, message: str):
        raise SqlTranslationError(f"{message} in {self.sql!r}")

    def value(self, node: tuple) -> _Code:
        code = self.gen(node)
        if code.type == "bool":
            self.fail("a condition cannot be used as a value (wrap it in CASE WHEN ... THEN 1 ELSE 0 END)")
        return code

    def condition(self, node: tuple) -> _Code:
        code = self.gen(node)
        if code.type == "bool":
            return code
        if node[0] == "lit" and node[1] is None:
            return _Code("False", "bool", False)
        self.fail("expected a condition")

    def guarded(self, parts: list[_Code], build: Callable[[list[str]], str], *, null_result: str) -> str:
        """`build(operands)`, or `null_result` when a nullable operand is None (each evaluated once)."""
        names, bound = [], []
        for part in parts:
            if part.nullable:
                name = self.temp()
                bound.append(f"({name} := {part.src})")
                names.append(name)
            else:
                names.append(part.src)
        if not bound:
            return f"({build(names)})"
        if null_result == "False":
            present = " and ".join(f"{b} is not None" for b in bound)
            return f"({present} and {build(names)})"
        return f"({null_result} if {' or '.join(f'{b} is None' for b in bound)} else {build(names)})"

    def gen(self, node: tuple) -> _Code:  # one branch per node kind
        kind = node[0]
        if kind == "lit":
            value = node[1]
            if value is None:
                return _Code("None", "null", True)
            if isinstance(value, bool):
                return _Code(repr(value), "bool", False)
            return _Code(repr(value), "str" if isinstance(value, str) else type(value).__name__, False)
        if kind == "col":
            return _Code(f"r[{COLUMN_INDEX[node[1]]}]", COLUMN_TYPE[node[1]], True)
        if kind == "derived":  # a derived column: numeric, appended after the row's columns
            return _Code(f"r[{len(COLUMN_INDEX) + node[1]}]", "float", True)
        if kind == "fn":
            _, arity, result = FUNCTIONS[node[1]]
            if len(node[2]) != arity:
                self.fail(f"{node[1]} takes {arity} argument(s)")
            args = ", ".join(self.value(a).src for a in node[2])
            # Called with NULL arguments as Flink calls a Python UDF (the function decides what NULL gives).
            return _Code(f"_fn_{node[1].lower()}({args})", result, True)
        if kind == "neg":
            inner = self.value(node[1])
            self.numeric(inner, "-")
            return _Code(self.guarded([inner], lambda x: f"-{x[0]}", null_result="None"), inner.type, True)
        if kind == "arith":
            op, a, b = node[1], self.value(node[2]), self.value(node[3])
            self.numeric(a, op)
            self.numeric(b, op)
            floating = "float" in (a.type, b.type)
            if op == "/":
                build = (lambda x: f"_fdiv({x[0]}, {x[1]})") if floating else (lambda x: f"_idiv({x[0]}, {x[1]})")
                nullable = True
            else:
                build, nullable = (lambda x: f"{x[0]} {op} {x[1]}"), a.nullable or b.nullable
            result = "float" if floating else "int" if "int" in (a.type, b.type) else "null"
            return _Code(self.guarded([a, b], build, null_result="None"), result, nullable)
        if kind == "cmp":
            op, a, b = node[1], self.value(node[2]), self.value(node[3])
            literal = a if not a.nullable else b if not b.nullable else None
            if op == "==" and literal is not None:
                other = b if literal is a else a
                # x = 'lit' is False for a NULL x, exactly what Python's == gives: no guard needed.
                return _Code(f"({other.src} == {literal.src})", "bool", False)
            return _Code(self.guarded([a, b], lambda x: f"{x[0]} {op} {x[1]}", null_result="False"), "bool", False)
        if kind in ("and", "or"):
            a, b = self.condition(node[1]), self.condition(node[2])
            return _Code(f"({a.src} {kind} {b.src})", "bool", False)
        if kind == "isnull":
            inner = self.value(node[1])
            return _Code(f"({inner.src} is {'not ' if node[2] else ''}None)", "bool", False)
        if kind == "in":
            inner, values, negated = self.value(node[1]), node[2], node[3]
            members = "(" + ", ".join(repr(v) for v in values) + ("," if len(values) == 1 else "") + ")"
            test = "not in" if negated else "in"
            return _Code(self.guarded([inner], lambda x: f"{x[0]} {test} {members}", null_result="False"),
                         "bool", False)
        if kind == "cast":
            inner, target = self.value(node[1]), node[2]
            if inner.type == "str":
                self.fail(f"CAST of a string to {target} is not supported")
            return _Code(self.guarded([inner], lambda x: f"{target}({x[0]})", null_result="None"), target,
                         inner.nullable)
        if kind == "call":
            args = [self.value(a) for a in node[2]]
            for a in args:
                self.numeric(a, node[1])
            result = "float" if any(a.type == "float" for a in args) else "int"
            helper = "_least" if node[1] == "min" else "_greatest"
            return _Code(f"{helper}({', '.join(a.src for a in args)})", result, True)
        if kind == "case":
            branches = [(self.condition(c), self.value(v)) for c, v in node[1]]
            otherwise = self.value(node[2])
            values = [v for _, v in branches] + [otherwise]
            types = {v.type for v in values} - {"null"}
            if "str" in types and len(types) > 1:
                self.fail("CASE mixes strings and numbers")
            result = "float" if "float" in types else types.pop() if len(types) == 1 else "null"
            src = otherwise.src
            for condition, value in reversed(branches):
                src = f"({value.src} if {condition.src} else {src})"
            return _Code(src, result, any(v.nullable for v in values))
        raise AssertionError(kind)

    def numeric(self, code: _Code, op: str) -> None:
        if code.type not in ("int", "float", "null"):
            self.fail(f"{op} needs numbers, got a {code.type}")


def _function(sql: str, body: str) -> Callable[[Row], Any]:
    source = f"def evaluate(r):\n    return {body}\n"
    namespace = dict(_HELPERS)
    exec(compile(source, f"<sql: {sql}>", "exec"), namespace)  # the body is generated from a parsed tree only
    function = namespace["evaluate"]
    function.__doc__ = sql
    function.python_source = body
    return function


def compile_predicate(sql: str, derived: tuple[str, ...] = ()) -> Callable[[Row], bool]:
    """A function of an engagement row: True exactly when the Flink SQL predicate `sql` is TRUE (not FALSE, not
    NULL). Raises SqlTranslationError for what the translator does not handle.

    derived: names of derived columns `sql` may use; the row then carries their values after its own columns."""
    generator = _Generator(sql)
    return _function(sql, generator.condition(parse(sql, derived)).src)


def compile_value(sql: str, derived: tuple[str, ...] = ()) -> Callable[[Row], float | int | str | None]:
    """A function of an engagement row giving the value of the Flink SQL expression `sql`, None for NULL
    (`derived` as for compile_predicate)."""
    generator = _Generator(sql)
    return _function(sql, generator.value(parse(sql, derived)).src)
