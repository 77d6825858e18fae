"""`fyp sql`, `fyp tables`, `fyp maintain`: the Iceberg lake for analysts and operators (fyp.lake)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import typer
from botocore.exceptions import BotoCoreError, ClientError
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchNamespaceError,
    NoSuchTableError,
    RESTError,
    ValidationException,
)
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json
from fyp.config import load_settings

__all__ = ["register"]

# Expected failures: bad input, a missing table or snapshot, the stack down, a commit lost to a writer.
_ERRORS = (ValueError, NoSuchTableError, NoSuchNamespaceError, RESTError, CommitFailedException, ValidationException,
           OSError, BotoCoreError, ClientError)
CONSOLE_ROWS = 100
WIDE_COLUMNS = 8
MIN_SAFE_ORPHAN_AGE = timedelta(minutes=10)


def _catalog():
    from connectors.iceberg_tables import catalog  # pyiceberg is slow to import: only for these commands

    return catalog(load_settings())


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def _cell(value) -> str:
    return "[dim]NULL[/]" if value is None else str(value).replace("[", r"\[")


def _print_rows(rows) -> None:
    """A table; past WIDE_COLUMNS columns, one small table per row (rich would squeeze every cell to `…`)."""
    if rows.num_columns <= WIDE_COLUMNS:
        table = Table(*rows.column_names)
        for row in rows.to_pylist():
            table.add_row(*(_cell(v) for v in row.values()))
        console.print(table)
        return
    for index, row in enumerate(rows.to_pylist(), start=1):
        table = Table("column", "value", title=f"row {index}", title_justify="left")
        for name, value in row.items():
            table.add_row(name, _cell(value))
        console.print(table)


def sql(
    query: str = typer.Argument(..., help="DuckDB SQL; name Iceberg tables as namespace.table."),
    out: Path = typer.Option(None, "--out", help="Write the rows to a .csv or .parquet file."),
    as_of: str = typer.Option(None, "--as-of", help="A snapshot id, or an ISO time (UTC unless it has an offset)."),
    as_json: bool = typer.Option(False, "--json", help="Print rows and scan statistics as JSON."),
    limit: int = typer.Option(None, "--limit", min=0, help=f"At most N rows (the console shows {CONSOLE_ROWS})."),
) -> None:
    """Query the Iceberg tables with DuckDB; the WHERE clause's simple predicates prune files before reading."""
    from fyp.lake.sql import check_output_path, parse_as_of, run_query, write_result

    with fail_cleanly(*_ERRORS), err_console.status("planning the scans and running the query …"):
        if out is not None:
            check_output_path(out)
        snapshot = parse_as_of(as_of) if as_of else None
        result = run_query(_catalog(), query, as_of=snapshot)
        rows = result.rows if limit is None else result.rows.slice(0, limit)
        if out is not None:
            write_result(rows, out)
    scans = [
        f"{s.table} @ {s.snapshot_id}: {s.files_planned}/{s.files_total} files planned ({_size(s.bytes_planned)}), "
        f"{s.rows_scanned:,} rows read; filter: {s.row_filter}; columns: {', '.join(s.columns or ['*'])}"
        for s in result.scans
    ]
    if as_json:
        print_json({"columns": rows.column_names, "rows": [] if out else rows.to_pylist(), "row_count": rows.num_rows,
                    "scans": result.scans, "elapsed_s": round(result.elapsed_s, 3), "out": str(out) if out else None})
        return
    if out is not None:
        console.print(f"[green]✓[/] wrote {rows.num_rows:,} rows to {out}")
    else:
        shown = rows.slice(0, limit if limit is not None else CONSOLE_ROWS)
        _print_rows(shown)
        more = f" (showing {shown.num_rows:,}; use --limit, --out or --json)" if shown.num_rows < rows.num_rows else ""
        console.print(f"{rows.num_rows:,} rows in {result.elapsed_s:.2f} s{more}")
    for line in scans:
        console.print(f"[dim]{line}[/]", highlight=False)


def tables(as_json: bool = typer.Option(False, "--json", help="Print the tables as JSON.")) -> None:
    """List the Iceberg namespaces and tables: schema, partitioning, sort order, snapshots, rows and files."""
    from fyp.lake import describe_tables
    from fyp.lake.sql import LAKE_VIEWS

    with fail_cleanly(*_ERRORS):
        found = describe_tables(_catalog())
    names = {info.name for info in found}
    views = {name: view for name, view in LAKE_VIEWS.items() if view.source in names}  # `fyp sql` only
    if as_json:
        print_json({"tables": found, "views": [{"name": name, "source": view.source, "sql": view.sql,
                                                 "doc": view.doc} for name, view in views.items()]})
        return
    if not found:
        console.print("[yellow]no Iceberg tables[/] (fyp up creates the history tables)")
    for info in found:
        console.print(
            f"[bold]{info.name}[/]  {info.rows:,} rows, {info.data_files:,} data files ({_size(info.bytes)}), "
            f"{info.snapshots} snapshots (current {info.current_snapshot_id})\n"
            f"  partitioned by: {', '.join(info.partition_spec) or 'nothing'}; "
            f"sorted by: {', '.join(info.sort_order) or 'nothing'}\n  location: {info.location}", highlight=False)
        schema = Table("id", "column", "type", "required")
        for column in info.columns:
            schema.add_row(str(column.field_id), column.name, column.type, "yes" if column.required else "")
        console.print(schema)
    for name, view in views.items():
        console.print(f"[bold]{name}[/]  view in `fyp sql`: {view.doc}", highlight=False)


def _files(fs) -> str:
    return f"{fs.files:,} files, {_size(fs.bytes)}"


def _print_report(report) -> None:
    c, e, o = report.compaction, report.expiry, report.orphans
    table = Table("step", "before", "after", "detail", title=f"{report.table} ({report.elapsed_s:.1f} s)")
    table.add_row("compaction (live data files)", _files(c.before), _files(c.after),
                  f"{c.bins_rewritten} bins: {c.files_rewritten} files → {c.files_written}, {c.rows_rewritten:,} "
                  f"rows rewritten; table rows {c.rows_before:,} → {c.rows_after:,}; {c.conflicts} conflicts"
                  + "".join(f"; {s}" for s in c.skipped))
    table.add_row("snapshot expiry (referenced files)",
                  f"{e.snapshots_before} snapshots, {_files(e.referenced_before)}",
                  f"{e.snapshots_after} snapshots, {_files(e.referenced_after)}", "")
    table.add_row("orphan files (objects under location)", _files(o.before), _files(o.after),
                  f"deleted {_files(o.deleted)}; {o.too_recent} orphans younger than --older-than kept")
    console.print(table)


def _maintain_once(names: list[str] | None, older_than: timedelta, target_bytes: int, as_json: bool) -> None:
    from fyp.lake import table_names
    from fyp.lake.maintenance import maintain_table
    from fyp.stack.seaweedfs import s3_client

    catalog = _catalog()
    s3 = s3_client(load_settings())
    reports = []
    for name in names or table_names(catalog):
        with err_console.status(f"maintaining {name}: compacting, expiring snapshots, deleting orphans …"):
            report = maintain_table(catalog.load_table(name), s3, older_than=older_than, target_bytes=target_bytes,
                                    name=name)
        reports.append(report)
        if not as_json:
            _print_report(report)
    if as_json:
        print_json({"tables": reports})


def maintain(
    table: list[str] = typer.Option(None, "--table", help="namespace.table (repeatable; default: every table)."),
    older_than: str = typer.Option("1h", "--older-than", help="Expire snapshots and delete orphans older than this."),
    target_file_mb: int = typer.Option(128, "--target-file-mb", min=1, help="Compacted file size, MiB on disk."),
    every: str = typer.Option(None, "--every", help="Run again after this long (e.g. 1h), until interrupted."),
    allow_recent: bool = typer.Option(
        False, "--allow-recent", help="Allow --older-than below 10m: only when no writer (the Flink job) is running."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
) -> None:
    """Compact small files, expire old snapshots and delete orphan files, table by table."""
    from fyp.lake.maintenance import parse_duration

    with fail_cleanly(ValueError):
        age = parse_duration(older_than)
        period = parse_duration(every) if every else None
        if age < MIN_SAFE_ORPHAN_AGE and not allow_recent:
            raise ValueError(f"--older-than {older_than} could delete files a running writer has not committed yet "
                             "(Flink commits on checkpoints); use 10m or more, or --allow-recent when none runs")
    while True:
        try:
            with fail_cleanly(*_ERRORS):
                _maintain_once(table or None, age, target_file_mb * 2**20, as_json)
        except typer.Exit:
            if period is None:
                raise
        if period is None:
            return
        err_console.print(f"[dim]next run in {every} (Ctrl-C stops)[/]")
        try:
            time.sleep(period.total_seconds())
        except KeyboardInterrupt:
            return


def register(app: typer.Typer) -> None:
    app.command()(sql)
    app.command()(tables)
    app.command()(maintain)
