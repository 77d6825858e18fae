"""Parse the Flink SQL subset of feature declarations into a small tree of tuples (`featurespec.reference.sql`
turns the tree into Python). The subset, and why NOT is refused, is described in `featurespec.reference.sql`.

>>> parse("event_type = 'watch' AND dwell_ms < 2000")
('and', ('cmp', '==', ('col', 'event_type'), ('lit', 'watch')), ('cmp', '<', ('col', 'dwell_ms'), ('lit', 2000)))
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from udfs.envelope import ENGAGEMENT_ROW_FIELDS
from udfs.sentiment import comment_sentiment

__all__ = ["COLUMN_INDEX", "COLUMN_TYPE", "FUNCTIONS", "Row", "SqlTranslationError", "engagement_row", "parse"]

COLUMN_INDEX: dict[str, int] = {name: i for i, (name, _) in enumerate(ENGAGEMENT_ROW_FIELDS)}
COLUMN_TYPE = {name: ("str" if sql == "STRING" else "int" if sql == "BIGINT" else "array")
               for name, sql in ENGAGEMENT_ROW_FIELDS}

Row = tuple[Any, ...]


class SqlTranslationError(ValueError):
    """A SQL snippet uses syntax, a column or a type the translator does not handle; the message says which."""


def engagement_row(**columns: Any) -> Row:
    """An engagement row (ENGAGEMENT_ROW_FIELDS order) with the given columns set and the rest None: for tests
    and examples."""
    unknown = set(columns) - set(COLUMN_INDEX)
    if unknown:
        raise KeyError(f"not engagement-row columns: {sorted(unknown)}")
    return tuple(columns.get(name) for name, _ in ENGAGEMENT_ROW_FIELDS)


# The Python scalar functions the jobs register (udfs/flink_functions.py SCALAR_FUNCTIONS), by SQL name:
# (the function, its argument count, its result type). The same Python code runs in Flink and here.
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, str]] = {"COMMENT_SENTIMENT": (comment_sentiment, 1, "float")}


# --- tokens ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
    (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>`[^`]+`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|!=|<=|>=|[=<>*/+\-(),])
)""", re.VERBOSE)
_KEYWORDS = {"AND", "OR", "NOT", "IS", "NULL", "IN", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "AS",
             "TRUE", "FALSE", "LEAST", "GREATEST"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, string, column, keyword, op, end
    text: str


def _tokens(sql: str) -> list[_Token]:
    out, pos = [], 0
    while pos < len(sql):
        if sql[pos:].strip() == "":
            break
        match = _TOKEN.match(sql, pos)
        if match is None:
            raise SqlTranslationError(f"cannot read {sql[pos:pos + 20]!r} in {sql!r}")
        kind = match.lastgroup
        text = match.group(kind)
        if kind == "quoted":
            kind, text = "column", text[1:-1]
        elif kind == "word":
            if text.upper() in _KEYWORDS:
                kind, text = "keyword", text.upper()
            else:
                kind = "column"
        out.append(_Token(kind, text))
        pos = match.end()
    out.append(_Token("end", ""))
    return out


# --- parse to a small tree of tuples ---------------------------------------------------------------------
# ("lit", value) ("col", name) ("neg", x) ("arith", op, a, b) ("cmp", op, a, b) ("and", a, b) ("or", a, b)
# ("isnull", x, negated) ("in", x, values, negated) ("cast", x, type) ("call", "min"|"max", args)
# ("case", ((cond, value), ...), else)

_COMPARISONS = {"=": "==", "<>": "!=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_CASTS = {"DOUBLE": "float", "FLOAT": "float", "REAL": "float", "BIGINT": "int", "INT": "int", "INTEGER": "int"}


class _Parser:
    def __init__(self, sql: str, derived: tuple[str, ...] = ()) -> None:
        self.sql = sql
        self.derived = derived
        self.tokens = _tokens(sql)
        self.pos = 0

    def parse(self) -> tuple:
        node = self.disjunction()
        if self.peek().kind != "end":
            self.fail(f"unexpected {self.peek().text!r}")
        return node

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept(self, *texts: str) -> str | None:
        token = self.peek()
        if token.kind in ("keyword", "op") and token.text in texts:
            self.pos += 1
            return token.text
        return None

    def expect(self, text: str) -> None:
        if self.accept(text) is None:
            self.fail(f"expected {text!r}, found {self.peek().text or 'the end'!r}")

    def fail(self, message: str):
        raise SqlTranslationError(f"{message} in {self.sql!r}")

    def disjunction(self) -> tuple:
        node = self.conjunction()
        while self.accept("OR"):
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> tuple:
        node = self.predicate()
        while self.accept("AND"):
            node = ("and", node, self.predicate())
        return node

    def predicate(self) -> tuple:
        if self.peek().text == "NOT" and self.peek().kind == "keyword":
            self.fail("NOT is not supported (it needs three-valued logic); write the positive condition")
        node = self.additive()
        op = self.accept(*_COMPARISONS)
        if op:
            return ("cmp", _COMPARISONS[op], node, self.additive())
        if self.accept("IS"):
            negated = self.accept("NOT") is not None
            self.expect("NULL")
            return ("isnull", node, negated)
        negated = self.accept("NOT") is not None
        if self.accept("IN"):
            self.expect("(")
            values = [self.literal_in_list()]
            while self.accept(","):
                values.append(self.literal_in_list())
            self.expect(")")
            return ("in", node, tuple(values), negated)
        if negated:
            self.fail("NOT is only supported in NOT IN")
        return node

    def literal_in_list(self) -> Any:
        node = self.unary()
        if node[0] != "lit" or node[1] is None:
            self.fail("IN (...) takes non-NULL literals only")
        return node[1]

    def additive(self) -> tuple:
        node = self.multiplicative()
        while op := self.accept("+", "-"):
            node = ("arith", op, node, self.multiplicative())
        return node

    def multiplicative(self) -> tuple:
        node = self.unary()
        while op := self.accept("*", "/"):
            node = ("arith", op, node, self.unary())
        return node

    def unary(self) -> tuple:
        if self.accept("-"):
            node = self.unary()
            if node[0] == "lit" and isinstance(node[1], int | float) and not isinstance(node[1], bool):
                return ("lit", -node[1])
            return ("neg", node)
        return self.primary()

    def primary(self) -> tuple:
        token = self.take()
        if token.kind == "number":
            return ("lit", float(token.text) if any(c in token.text for c in ".eE") else int(token.text))
        if token.kind == "string":
            return ("lit", token.text[1:-1].replace("''", "'"))
        if token.kind == "column":
            if self.peek().text == "(":
                if token.text.upper() not in FUNCTIONS:
                    self.fail(f"function {token.text.upper()} is not supported (only CAST, LEAST, GREATEST, "
                              f"{', '.join(FUNCTIONS)})")
                self.expect("(")
                args = [self.additive()]
                while self.accept(","):
                    args.append(self.additive())
                self.expect(")")
                return ("fn", token.text.upper(), tuple(args))
            name = token.text.lower()
            if name in self.derived:
                return ("derived", self.derived.index(name))
            if name not in COLUMN_INDEX:
                self.fail(f"unknown column {token.text!r} (engagement-row columns: {', '.join(COLUMN_INDEX)})")
            if COLUMN_TYPE[name] == "array":
                self.fail(f"column {name!r} is an ARRAY, which expressions cannot use")
            return ("col", name)
        if token.kind == "op" and token.text == "(":
            node = self.disjunction()
            self.expect(")")
            return node
        if token.kind == "keyword":
            if token.text in ("TRUE", "FALSE"):
                return ("lit", token.text == "TRUE")
            if token.text == "NULL":
                return ("lit", None)
            if token.text == "CAST":
                self.expect("(")
                inner = self.disjunction()
                self.expect("AS")
                target = self.take().text.upper()
                if target not in _CASTS:
                    self.fail(f"CAST to {target} is not supported (only {', '.join(_CASTS)})")
                self.expect(")")
                return ("cast", inner, _CASTS[target])
            if token.text in ("LEAST", "GREATEST"):
                self.expect("(")
                args = [self.additive()]
                while self.accept(","):
                    args.append(self.additive())
                self.expect(")")
                return ("call", "min" if token.text == "LEAST" else "max", tuple(args))
            if token.text == "CASE":
                branches = []
                while self.accept("WHEN"):
                    condition = self.disjunction()
                    self.expect("THEN")
                    branches.append((condition, self.additive()))
                if not branches:
                    self.fail("CASE needs at least one WHEN (the simple CASE x WHEN form is not supported)")
                otherwise = self.additive() if self.accept("ELSE") else ("lit", None)
                self.expect("END")
                return ("case", tuple(branches), otherwise)
        self.fail(f"unexpected {token.text or 'end'!r}")


def parse(sql: str, derived: tuple[str, ...] = ()) -> tuple:
    """The tree of `sql` (node kinds listed above `_Parser`); `derived` names the derived columns it may use.
    Raises SqlTranslationError for what the subset does not hold."""
    return _Parser(sql, derived).parse()
