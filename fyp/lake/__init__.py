"""The lake: SQL over the Iceberg tables, their upkeep, their evolution, and what is in the catalog.

- `fyp.lake.sql`: DuckDB queries over pyiceberg scans (`fyp sql`), with the predicates and columns that
  `fyp.lake.pushdown` finds in the query pushed into each scan.
- `fyp.lake.maintenance`: compaction (`fyp.lake.compaction`), snapshot expiry and orphan cleanup of one table.
- `fyp.lake.schedule`: a pass of those over the tables, its settings (FYP_LAKE_MAINTENANCE_*), run by `fyp maintain`
  and the lake-maintenance worker (`workers/lake_maintenance.py`).
- `fyp.lake.evolution`: adding optional columns when an event schema grows.
- `describe_tables` here: namespaces, tables, schemas and sizes (`fyp tables`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

__all__ = ["ColumnInfo", "TableInfo", "describe_table", "describe_tables", "table_names"]


@dataclass(frozen=True, kw_only=True)
class ColumnInfo:
    field_id: int
    name: str
    type: str
    required: bool
    doc: str | None = None


@dataclass(frozen=True, kw_only=True)
class TableInfo:
    """One table's layout and its current snapshot's totals (zeros for a table never written to)."""

    name: str
    location: str
    format_version: int
    columns: tuple[ColumnInfo, ...]
    partition_spec: tuple[str, ...]  # e.g. "day(event_time) AS event_day"
    sort_order: tuple[str, ...]  # e.g. "user_id ASC NULLS FIRST"
    snapshots: int
    current_snapshot_id: int | None
    rows: int
    data_files: int
    bytes: int


def table_names(catalog: Catalog) -> list[str]:
    """Every `namespace.table` in the catalog, sorted."""
    return sorted(".".join(ident) for ns in catalog.list_namespaces() for ident in catalog.list_tables(ns))


def describe_table(table: Table, name: str) -> TableInfo:
    schema = table.schema()
    spec = [
        f"{f.transform}({schema.find_field(f.source_id).name}) AS {f.name}"
        if str(f.transform) != "identity" else schema.find_field(f.source_id).name
        for f in table.spec().fields
    ]
    order = [
        f"{schema.find_field(f.source_id).name} {f.direction.value.upper()} "
        f"{f.null_order.value.upper().replace('-', ' ')}"
        if str(f.transform) == "identity" else f"{f.transform}({schema.find_field(f.source_id).name}) "
        f"{f.direction.value.upper()}"
        for f in table.sort_order().fields
    ]
    snapshot = table.current_snapshot()
    summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
    return TableInfo(
        name=name, location=table.location(), format_version=table.metadata.format_version,
        columns=tuple(ColumnInfo(field_id=f.field_id, name=f.name, type=str(f.field_type), required=f.required,
                                 doc=f.doc) for f in schema.fields),
        partition_spec=tuple(spec), sort_order=tuple(order), snapshots=len(table.metadata.snapshots),
        current_snapshot_id=snapshot.snapshot_id if snapshot else None,
        rows=int(summary.get("total-records", 0)), data_files=int(summary.get("total-data-files", 0)),
        bytes=int(summary.get("total-files-size", 0)),
    )


def describe_tables(catalog: Catalog) -> list[TableInfo]:
    return [describe_table(catalog.load_table(name), name) for name in table_names(catalog)]
