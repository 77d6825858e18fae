"""`fyp sql`: DuckDB over pyiceberg scans, with the query's simple predicates pushed into each scan.

For every `namespace.table` in the query that names an Iceberg table, one pyiceberg scan reads it (at a snapshot,
for `--as-of`) into Arrow, and DuckDB runs the query over the scans, registered under the same names. Pushdown
is only ever a filter that the query's own WHERE clause implies, so a row it drops could not have reached the
result; DuckDB still applies the whole WHERE clause. Whenever the shape of the query leaves any doubt (the table
named twice, an outer join, a sample), the table is scanned in full: correctness first.

Timestamps without a time zone are read as UTC, by pyiceberg and by DuckDB alike (`SET TimeZone = 'UTC'`).

Views (`LAKE_VIEWS`) are queries over Iceberg tables that the query may name like a table: `history.videos`
is the latest row per video of `history.videos_changelog`, `graph.follows` the current follow edges
of `graph.follows_changelog`. The tables under a view are scanned in full.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import (
    AlwaysTrue,
    BooleanExpression,
)
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.table import Table

from fyp.lake.pushdown import LakeQueryError, describe_filter, needed_columns, pushdown_filters, referenced_tables
from schemas.tables import FOLLOWS, FOLLOWS_CHANGELOG, VIDEOS_CHANGELOG

__all__ = [
    "LAKE_VIEWS",
    "AsOf",
    "LakeQueryError",
    "QueryResult",
    "TableScan",
    "check_output_path",
    "parse_as_of",
    "run_query",
    "write_result",
]


@dataclass(frozen=True, kw_only=True)
class LakeView:
    """A DuckDB view over one Iceberg table (`source`), named like a table."""

    source: str
    sql: str
    doc: str


# Iceberg v2 upserts (equality deletes) would keep one row per video in the table itself, but pyiceberg 0.12
# cannot read equality deletes; an append-only changelog and this view stay exactly once and readable by all.
LAKE_VIEWS: dict[str, LakeView] = {
    "history.videos": LakeView(
        source=VIDEOS_CHANGELOG,
        sql=f"SELECT * FROM {VIDEOS_CHANGELOG} "
            "QUALIFY row_number() OVER (PARTITION BY video_id ORDER BY seq DESC) = 1",
        doc="one row per video: its latest state in history.videos_changelog (highest seq)",
    ),
    # jobs/follow_graph.py's rule (udfs/follow_graph.py): the latest event per pair wins, an unfollow at a tie.
    FOLLOWS: LakeView(
        source=FOLLOWS_CHANGELOG,
        sql="SELECT user_id, author_id, event_time AS followed_at FROM ("
            f"SELECT * FROM {FOLLOWS_CHANGELOG} QUALIFY row_number() OVER ("
            "PARTITION BY user_id, author_id ORDER BY event_time DESC, op DESC) = 1) WHERE op = '+'",
        doc="the current follow edges: per (user_id, author_id) the latest row of graph.follows_changelog, "
            "kept if it is a follow ('+')",
    ),
}


# ---------------------------------------------------------------------------------------------------------------
# --as-of


@dataclass(frozen=True, kw_only=True)
class AsOf:
    """Which snapshot to read: a snapshot id, or the snapshot current at a time (epoch milliseconds)."""

    snapshot_id: int | None = None
    timestamp_ms: int | None = None

    def __post_init__(self) -> None:
        if (self.snapshot_id is None) == (self.timestamp_ms is None):
            raise ValueError("AsOf takes exactly one of snapshot_id and timestamp_ms")


def parse_as_of(text: str) -> AsOf:
    """`--as-of` as a snapshot id (digits) or an ISO 8601 time; a time without an offset is UTC.

    >>> parse_as_of("42")
    AsOf(snapshot_id=42, timestamp_ms=None)
    >>> parse_as_of("1970-01-01T00:00:01Z")
    AsOf(snapshot_id=None, timestamp_ms=1000)
    """
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return AsOf(snapshot_id=int(text))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--as-of {text!r} is neither a snapshot id nor an ISO 8601 time (e.g. 2026-11-20T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return AsOf(timestamp_ms=int(moment.timestamp() * 1000))


@dataclass(frozen=True, kw_only=True)
class TableScan:
    """How one Iceberg table was read: the snapshot, the pushed filter and columns, and the files pruned."""

    table: str
    snapshot_id: int | None
    row_filter: str
    columns: tuple[str, ...] | None  # None: every column
    files_planned: int
    files_total: int
    bytes_planned: int
    rows_scanned: int


@dataclass(frozen=True, kw_only=True)
class QueryResult:
    rows: pa.Table
    scans: tuple[TableScan, ...]
    elapsed_s: float


def _iceberg_tables(catalog: Catalog, names: list[str]) -> dict[str, tuple[str, str]]:
    """'ns.table' -> (namespace, table) as the catalog spells them, for the names whose namespace is Iceberg's."""
    namespaces = {ns[0].lower(): ns[0] for ns in catalog.list_namespaces() if len(ns) == 1}
    listed: dict[str, dict[str, str]] = {}
    found = {}
    for name in names:
        ns_key, table_key = name.split(".", 1)
        if ns_key not in namespaces:
            continue  # not an Iceberg namespace: DuckDB's own (information_schema, ...) or an error DuckDB reports
        namespace = namespaces[ns_key]
        if namespace not in listed:
            listed[namespace] = {ident[-1].lower(): ident[-1] for ident in catalog.list_tables(namespace)}
        if table_key not in listed[namespace]:
            known = ", ".join(f"{namespace}.{t}" for t in sorted(listed[namespace].values())) or "none"
            raise LakeQueryError(f"unknown table {name} (tables in namespace {namespace}: {known})")
        found[name] = (namespace, listed[namespace][table_key])
    return found


def _snapshot_id(table: Table, name: str, as_of: AsOf | None) -> int | None:
    if as_of is None:
        current = table.current_snapshot()
        return current.snapshot_id if current else None
    if as_of.snapshot_id is not None:
        if table.snapshot_by_id(as_of.snapshot_id) is None:
            raise LakeQueryError(f"{name} has no snapshot {as_of.snapshot_id} (never, or expired): see `fyp tables`")
        return as_of.snapshot_id
    snapshot = table.snapshot_as_of_timestamp(as_of.timestamp_ms)
    if snapshot is None:
        moment = datetime.fromtimestamp(as_of.timestamp_ms / 1000, UTC).isoformat()
        raise LakeQueryError(f"{name} has no snapshot at or before {moment} (too early, or expired)")
    return snapshot.snapshot_id


def _scan(table: Table, name: str, snapshot_id: int | None, row_filter: BooleanExpression,
          columns: tuple[str, ...] | None) -> tuple[pa.Table, TableScan]:
    scan = table.scan(row_filter=row_filter, selected_fields=columns or ("*",), snapshot_id=snapshot_id)
    tasks = list(scan.plan_files())
    snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    total = int(snapshot.summary["total-data-files"] or 0) if snapshot and snapshot.summary else 0
    rows = ArrowScan(table.metadata, table.io, scan.projection(), row_filter, True).to_table(tasks)
    return rows, TableScan(
        table=name, snapshot_id=snapshot_id, row_filter=describe_filter(row_filter), columns=columns,
        files_planned=len(tasks), files_total=total, bytes_planned=sum(t.file.file_size_in_bytes for t in tasks),
        rows_scanned=rows.num_rows,
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def run_query(catalog: Catalog, sql: str, *, as_of: AsOf | None = None) -> QueryResult:
    """Run one DuckDB query over the Iceberg tables it names (scanned with pushdown) and return its rows.

    Raises LakeQueryError for SQL that DuckDB rejects, an unknown table, or an `as_of` with no snapshot.
    """
    started = time.monotonic()
    named = referenced_tables(sql)
    views = {name: LAKE_VIEWS[name] for name in named if name in LAKE_VIEWS}
    under_views = {view.source for view in views.values()}
    found = _iceberg_tables(catalog, sorted({n for n in named if n not in views} | under_views))
    tables = {name: catalog.load_table(ident) for name, ident in found.items()}
    direct = {name: t.schema() for name, t in tables.items() if name not in under_views}
    filters: dict[str, BooleanExpression] = {name: AlwaysTrue() for name in under_views}
    columns: dict[str, tuple[str, ...] | None] = {name: None for name in under_views}
    filters.update(pushdown_filters(sql, direct))
    columns.update(needed_columns(sql, direct))
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    scans = []
    for index, (name, table) in enumerate(tables.items()):
        rows, scan = _scan(table, name, _snapshot_id(table, name, as_of), filters[name], columns[name])
        scans.append(scan)
        namespace, table_name = found[name]
        con.register(f"__iceberg_scan_{index}", rows)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(namespace)}")
        con.execute(f"CREATE VIEW {_quote(namespace)}.{_quote(table_name)} AS SELECT * FROM __iceberg_scan_{index}")
    for name, view in views.items():
        namespace, view_name = name.split(".", 1)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(namespace)}")
        con.execute(f"CREATE VIEW {_quote(namespace)}.{_quote(view_name)} AS {view.sql}")
    try:
        relation = con.sql(sql)
        result = relation.to_arrow_table() if relation is not None else pa.table({})
    except duckdb.Error as exc:
        message = str(exc)
        if isinstance(exc, duckdb.CatalogException):
            known = ", ".join(_all_tables(catalog)) or "none"
            message += f"\n(Iceberg tables: {known})"
        raise LakeQueryError(message) from exc
    finally:
        con.close()
    return QueryResult(rows=result, scans=tuple(scans), elapsed_s=time.monotonic() - started)


def _all_tables(catalog: Catalog) -> list[str]:
    return [".".join(ident) for ns in catalog.list_namespaces() for ident in catalog.list_tables(ns)]


def check_output_path(path: Path) -> None:
    """Refuse an --out path that `write_result` could not write, before the query runs."""
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise LakeQueryError(f"--out {path}: write a .csv or a .parquet file")
    if not path.parent.is_dir():
        raise LakeQueryError(f"--out {path}: no folder {path.parent}")


def write_result(rows: pa.Table, path: Path) -> None:
    """Write query rows to a .csv (with a header; lists as DuckDB prints them) or a .parquet file."""
    check_output_path(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(rows, path)
        return
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("result_rows", rows)
        target = str(path).replace("'", "''")
        con.execute(f"COPY result_rows TO '{target}' (FORMAT csv, HEADER)")
    except duckdb.Error as exc:  # e.g. a folder without write permission
        raise LakeQueryError(f"--out {path}: {exc}") from exc
    finally:
        con.close()
