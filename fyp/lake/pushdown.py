"""Which Iceberg tables a query names, and what of each it needs: the filter its WHERE clause implies and the
columns it reads. `fyp.lake.sql` pushes both into the pyiceberg scans.

Pushdown is only ever a filter that the query's own WHERE clause implies, so a row it drops could not have reached
the result. Whenever the shape of the query leaves any doubt (the table named twice, an outer join, a sample), the
table gets no filter and every column: correctness first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import sqlglot
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Not,
    NotEqualTo,
    NotIn,
    NotNull,
    Or,
)
from pyiceberg.expressions.visitors import bind
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BooleanType,
    DateType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
)
from sqlglot import exp

__all__ = ["LakeQueryError", "describe_filter", "needed_columns", "pushdown_filters", "referenced_tables"]


class LakeQueryError(ValueError):
    """The query cannot run: bad SQL, an unknown table, or a snapshot that is not there."""




def _parse(sql: str) -> exp.Expression | None:
    """One statement as sqlglot reads DuckDB's dialect, or None when sqlglot cannot read it (DuckDB may)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError:
        return None
    return statements[0] if len(statements) == 1 else None


def _key(db: str, name: str) -> str:
    return f"{db}.{name}".lower()


def referenced_tables(sql: str) -> list[str]:
    """The two-part names (`namespace.table`, lower case, sorted) that the query reads.

    >>> referenced_tables("SELECT * FROM history.events e JOIN dims.videos v USING (video_id)")
    ['dims.videos', 'history.events']
    """
    tree = _parse(sql)
    if tree is not None:
        names = [_key(t.db, t.name) for t in tree.find_all(exp.Table) if t.db and not t.catalog and t.name]
    else:  # sqlglot cannot read it: ask DuckDB's own parser (it raises on SQL that is truly bad)
        try:
            found = duckdb.get_table_names(sql, qualified=True)
        except duckdb.Error as exc:
            raise LakeQueryError(str(exc)) from exc
        names = []
        for name in sorted(found):
            parts = [p.strip('"') for p in re.split(r"\s+AS\s+", name, maxsplit=1, flags=re.I)[0].split(".")]
            if len(parts) == 2:
                names.append(_key(*parts))
    return sorted(set(names))


def _conjuncts(node: exp.Expression) -> Iterable[exp.Expression]:
    node = node.unnest()
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    else:
        yield node


def _column_name(node: exp.Expression, names: set[str], single_source: bool) -> str | None:
    """The column's lower-case name if it belongs to the table known by `names` (alias or name)."""
    if not isinstance(node, exp.Column) or not isinstance(node.this, exp.Identifier):
        return None
    qualifier = node.table.lower() if node.table else ""
    if node.args.get("catalog"):
        return None
    if node.db:  # history.engagement_events.col
        qualifier = _key(node.db, node.table)
    if qualifier and qualifier not in names:
        return None
    if not qualifier and not single_source:
        return None
    return node.name.lower()


def _literal(node: exp.Expression, field_type: IcebergType) -> Any:
    """A Python value for pyiceberg from a SQL literal, or None when the literal is not a plain one of that type."""
    node = node.unnest()
    negative = isinstance(node, exp.Neg)
    if negative:
        node = node.this
    cast_to = None
    if isinstance(node, exp.Cast):
        cast_to, node = node.to.this, node.this
    if isinstance(node, exp.Boolean) and isinstance(field_type, BooleanType) and cast_to is None:
        return node.this
    if not isinstance(node, exp.Literal):
        return None
    text = node.this
    if isinstance(field_type, StringType):
        return text if node.is_string and cast_to is None and not negative else None
    if isinstance(field_type, IntegerType | LongType):
        if node.is_string or cast_to is not None or not re.fullmatch(r"\d+", text):
            return None
        return -int(text) if negative else int(text)
    if not node.is_string or negative:
        return None
    if isinstance(field_type, DateType):
        if cast_to not in (None, exp.DataType.Type.DATE) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return None
        return text
    if isinstance(field_type, TimestamptzType | TimestampType):
        return _timestamp_literal(text, cast_to, with_zone=isinstance(field_type, TimestamptzType))
    return None


_T = exp.DataType.Type


def _timestamp_literal(text: str, cast_to: Any, *, with_zone: bool) -> str | None:
    """ISO text pyiceberg binds to a timestamp(tz) column, read the way DuckDB reads it in a UTC session."""
    if cast_to == _T.DATE:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return None
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
    elif cast_to in (None, _T.TIMESTAMP, _T.TIMESTAMPNTZ, _T.TIMESTAMPTZ, _T.TIMESTAMPLTZ):
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?", text):
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is not None and cast_to in (_T.TIMESTAMP, _T.TIMESTAMPNTZ):
            return None  # how DuckDB drops or applies that offset is not worth guessing
    else:
        return None
    if not with_zone:
        return None if moment.tzinfo is not None else moment.isoformat(timespec="microseconds")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


_COMPARISONS = {
    exp.EQ: (EqualTo, EqualTo),
    exp.NEQ: (NotEqualTo, NotEqualTo),
    exp.GT: (GreaterThan, LessThan),  # (column op literal, literal op column)
    exp.GTE: (GreaterThanOrEqual, LessThanOrEqual),
    exp.LT: (LessThan, GreaterThan),
    exp.LTE: (LessThanOrEqual, GreaterThanOrEqual),
}


class _Converter:
    """SQL predicates on one table's columns -> pyiceberg expressions; None for anything else."""

    def __init__(self, schema: Schema, names: set[str], *, single_source: bool, shadowed: set[str]) -> None:
        self.fields = {f.name.lower(): f for f in schema.columns}
        self.names, self.single_source, self.shadowed = names, single_source, shadowed

    def field(self, node: exp.Expression):
        name = _column_name(node.unnest(), self.names, self.single_source)
        if name is None or name in self.shadowed:
            return None
        return self.fields.get(name)

    def convert(self, node: exp.Expression) -> BooleanExpression | None:
        node = node.unnest()
        if isinstance(node, exp.And):
            left, right = self.convert(node.this), self.convert(node.expression)
            if left is None or right is None:  # A AND B implies either side alone
                return right if left is None else left
            return And(left, right)
        if isinstance(node, exp.Or):
            left, right = self.convert(node.this), self.convert(node.expression)
            return Or(left, right) if left is not None and right is not None else None
        if isinstance(node, exp.Not):
            inner = node.this.unnest()
            if isinstance(inner, exp.In):
                found = self._in_list(inner)
                return NotIn(found[0], found[1]) if found else None
            if isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null) and (f := self.field(inner.this)):
                return NotNull(f.name)
            return None
        if isinstance(node, exp.Is):
            field = self.field(node.this)
            return IsNull(field.name) if field and isinstance(node.expression, exp.Null) else None
        if isinstance(node, exp.In):
            found = self._in_list(node)
            return In(found[0], found[1]) if found else None
        if isinstance(node, exp.Between):
            field = self.field(node.this)
            if field is None or node.args.get("symmetric"):
                return None
            low, high = _literal(node.args["low"], field.field_type), _literal(node.args["high"], field.field_type)
            if low is None or high is None:
                return None
            return And(GreaterThanOrEqual(field.name, low), LessThanOrEqual(field.name, high))
        for kind, (forward, flipped) in _COMPARISONS.items():
            if type(node) is kind:
                return self._comparison(node.this, node.expression, forward, flipped)
        return None

    def _in_list(self, node: exp.In) -> tuple[str, tuple[Any, ...]] | None:
        field = self.field(node.this)
        if field is None or node.args.get("query") or node.args.get("unnest") or not node.expressions:
            return None
        values = tuple(_literal(v, field.field_type) for v in node.expressions)
        return None if any(v is None for v in values) else (field.name, values)

    def _comparison(self, left, right, forward, flipped) -> BooleanExpression | None:
        if (field := self.field(left)) is not None:
            value, make = _literal(right, field.field_type), forward
        elif (field := self.field(right)) is not None:
            value, make = _literal(left, field.field_type), flipped
        else:
            return None
        return None if value is None else make(field.name, value)


def _plain_join(join: exp.Join) -> bool:
    """An inner or cross join, where pushing a WHERE conjunct into either side cannot change the result."""
    kind = (join.args.get("kind") or "").upper()
    return not join.args.get("side") and not join.args.get("method") and kind in ("", "INNER", "CROSS")


def _table_filter(table: exp.Table, schema: Schema) -> BooleanExpression:
    """The part of the WHERE clause of `table`'s own SELECT that is about `table` alone."""
    from_ = table.parent
    select = from_.parent if from_ is not None else None
    if not isinstance(from_, exp.From | exp.Join) or not isinstance(select, exp.Select):
        return AlwaysTrue()
    where = select.args.get("where")
    joins = select.args.get("joins") or []
    if where is None or table.args.get("sample") or select.args.get("sample") or not all(map(_plain_join, joins)):
        return AlwaysTrue()
    if table.args.get("pivots") or table.args.get("joins") or table.args.get("laterals"):
        return AlwaysTrue()
    names = {table.alias_or_name.lower()} if table.alias else {table.name.lower(), _key(table.db, table.name)}
    # A select-list alias may be referred to in DuckDB's WHERE: never push a name that an alias redefines.
    shadowed = {
        e.alias.lower() for e in select.expressions
        if isinstance(e, exp.Alias) and not (isinstance(e.this, exp.Column) and e.this.name.lower() == e.alias.lower())
    }
    converter = _Converter(schema, names, single_source=not joins, shadowed=shadowed)
    found: BooleanExpression = AlwaysTrue()
    for conjunct in _conjuncts(where.this):
        predicate = converter.convert(conjunct)
        if predicate is None:
            continue
        try:
            bind(schema, predicate, case_sensitive=True)
        except Exception:  # a literal pyiceberg cannot bind: skip that conjunct, scan more
            continue
        found = predicate if isinstance(found, AlwaysTrue) else And(found, predicate)
    return found


def pushdown_filters(sql: str, schemas: Mapping[str, Schema]) -> dict[str, BooleanExpression]:
    """For each table in `schemas` ('ns.table' -> schema), a row filter that the query's WHERE clause implies.

    Covers `col = literal`, `<>`, `<`, `<=`, `>`, `>=`, `BETWEEN`, `IN (...)`, `NOT IN (...)`, `IS [NOT] NULL`,
    AND and OR, on string, integer, boolean, date and timestamp columns (timestamp literals as text, `TIMESTAMP
    '...'`, `TIMESTAMPTZ '...'` or `DATE '...'`). A table named more than once, or under an outer join, a sample
    or a pivot, gets AlwaysTrue (a full scan).

    >>> from pyiceberg.schema import Schema
    >>> from pyiceberg.types import NestedField, StringType
    >>> s = Schema(NestedField(1, "event_type", StringType(), required=True))
    >>> pushdown_filters("SELECT 1 FROM h.e WHERE event_type = 'like'", {"h.e": s})
    {'h.e': EqualTo(term=Reference(name='event_type'), literal=literal('like'))}
    """
    filters: dict[str, BooleanExpression] = {key: AlwaysTrue() for key in schemas}
    tree = _parse(sql)
    if tree is None:
        return filters
    uses: dict[str, list[exp.Table]] = {}
    for table in tree.find_all(exp.Table):
        if table.db and not table.catalog:
            uses.setdefault(_key(table.db, table.name), []).append(table)
    for key, schema in schemas.items():
        if len(uses.get(key, [])) == 1:
            filters[key] = _table_filter(uses[key][0], schema)
    return filters


def needed_columns(sql: str, schemas: Mapping[str, Schema]) -> dict[str, tuple[str, ...] | None]:
    """For each table, the columns the query can touch, or None for all of them (whenever in doubt).

    A name that appears anywhere as a column counts for every table that has it. `*` (outside `count(*)`),
    `COLUMNS(...)`, NATURAL joins, PIVOT, positional references, a table alias used as a value, and statements
    other than queries (DESCRIBE, SUMMARIZE ...) read everything.

    >>> from pyiceberg.schema import Schema
    >>> from pyiceberg.types import NestedField, StringType
    >>> s = Schema(NestedField(1, "a", StringType()), NestedField(2, "b", StringType()))
    >>> needed_columns("SELECT b, count(*) FROM h.e GROUP BY b", {"h.e": s})
    {'h.e': ('b',)}
    """
    everything: dict[str, tuple[str, ...] | None] = dict.fromkeys(schemas)
    tree = _parse(sql)
    if not isinstance(tree, exp.Query) or re.search(r"\bcolumns\s*\(|#\d", sql, flags=re.I):
        return everything
    if any(True for _ in tree.find_all(exp.Pivot)):
        return everything
    for star in tree.find_all(exp.Star):
        if not isinstance(star.parent, exp.Count):
            return everything
    if any(isinstance(c.this, exp.Star) for c in tree.find_all(exp.Column)):
        return everything
    if any(j.args.get("method") for j in tree.find_all(exp.Join)):  # NATURAL, ASOF, POSITIONAL ...
        return everything
    columns = list(tree.find_all(exp.Column))
    referenced = {c.name.lower() for c in columns}
    for join in tree.find_all(exp.Join):
        referenced |= {i.name.lower() for i in join.args.get("using") or []}
    table_names = {t.alias_or_name.lower() for t in tree.find_all(exp.Table)} | {
        a.name.lower() for a in tree.find_all(exp.TableAlias) if a.name
    }
    if referenced & table_names:  # `SELECT e FROM t e` is the whole row as a struct
        return everything
    # `s.f` may be field f of a struct column s rather than column f of a table s: keep s too.
    referenced |= {c.table.lower() for c in columns if c.table and c.table.lower() not in table_names}
    needed: dict[str, tuple[str, ...] | None] = {}
    for key, schema in schemas.items():
        names = tuple(f.name for f in schema.columns if f.name.lower() in referenced)
        needed[key] = names or (schema.columns[0].name,)  # count(*) still needs the row count
    return needed


def describe_filter(expression: BooleanExpression) -> str:
    """A short SQL-like rendering of an unbound pyiceberg filter, for reports.

    >>> describe_filter(And(EqualTo("event_type", "like"), In("region", ("US", "FR"))))
    "event_type = 'like' AND region IN ('FR', 'US')"
    """
    if isinstance(expression, AlwaysTrue):
        return "true"
    if isinstance(expression, And):
        return f"{describe_filter(expression.left)} AND {describe_filter(expression.right)}"
    if isinstance(expression, Or):
        return f"({describe_filter(expression.left)} OR {describe_filter(expression.right)})"
    if isinstance(expression, Not):
        return f"NOT ({describe_filter(expression.child)})"
    name = expression.term.name
    if isinstance(expression, IsNull | NotNull):
        return f"{name} IS {'NOT ' if isinstance(expression, NotNull) else ''}NULL"
    if isinstance(expression, In | NotIn):
        values = ", ".join(sorted(repr(v.value) for v in expression.literals))
        return f"{name} {'NOT IN' if isinstance(expression, NotIn) else 'IN'} ({values})"
    symbol = {EqualTo: "=", NotEqualTo: "<>", GreaterThan: ">", GreaterThanOrEqual: ">=", LessThan: "<",
              LessThanOrEqual: "<="}[type(expression)]
    return f"{name} {symbol} {expression.literal.value!r}"


# ---------------------------------------------------------------------------------------------------------------
# Running a query
