"""`fyp sql`, `fyp tables`, `fyp maintain`, `fyp worker lake-maintenance`: the Iceberg lake for analysts and operators
(fyp.lake)."""

from __future__ import annotations

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


def _maintenance_config(table: list[str] | None, older_than: str | None, target_file_mb: int | None,
                        every: str | None, allow_recent: bool):
    """FYP_LAKE_MAINTENANCE_* (fyp.lake.schedule), overridden by the flags given; a bad value exits with its error."""
    from fyp.lake.maintenance import parse_duration
    from fyp.lake.schedule import MaintenanceConfig

    with fail_cleanly(ValueError):
        return MaintenanceConfig.from_env(
            tables=tuple(table) if table else None,
            older_than=parse_duration(older_than) if older_than else None,
            target_bytes=target_file_mb * 2**20 if target_file_mb else None,
            every=parse_duration(every) if every else None,
            allow_recent=True if allow_recent else None,
        )


def _show_outcome(outcome) -> None:
    if outcome.report is not None:
        _print_report(outcome.report)
    else:
        err_console.print(f"[red]✗[/] {outcome.table}: {outcome.error}", highlight=False)


TABLE_OPTION = typer.Option(None, "--table", help="namespace.table (repeatable; default: every table).")
OLDER_THAN_OPTION = typer.Option(
    None, "--older-than", help="Expire snapshots and delete orphans older than this (default 1h).")
TARGET_OPTION = typer.Option(None, "--target-file-mb", min=1, help="Compacted file size, MiB on disk (default 128).")
ALLOW_RECENT_OPTION = typer.Option(
    False, "--allow-recent", help="Allow --older-than below 10m: only when no writer (the Flink job) is running.")


def maintain(
    table: list[str] = TABLE_OPTION,
    older_than: str = OLDER_THAN_OPTION,
    target_file_mb: int = TARGET_OPTION,
    every: str = typer.Option(
        None, "--every", help="Run again this long after each start (e.g. 10m), until interrupted: the "
        "lake-maintenance worker in the foreground."),
    allow_recent: bool = ALLOW_RECENT_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON (one run only)."),
) -> None:
    """Compact small files, expire old snapshots and delete orphan files, table by table.

    Defaults come from FYP_LAKE_MAINTENANCE_* (docs/OPERATIONS.md); a failed table does not stop the others, and
    the command exits 1 when any failed."""
    from workers.lake_maintenance import MaintenanceFailed, run

    config = _maintenance_config(table, older_than, target_file_mb, every, allow_recent)
    if every is not None:
        if as_json:
            err_console.print("[red]--json prints one run: leave out --every[/]")
            raise typer.Exit(2)
        run(config, on_outcome=_show_outcome)
        return
    outcomes = []
    show = outcomes.append if as_json else _show_outcome
    with fail_cleanly(*_ERRORS, MaintenanceFailed), err_console.status(
            "maintaining the tables: compacting, expiring snapshots, deleting orphans …"):
        try:
            run(config, once=True, on_outcome=show)
        finally:
            if as_json:
                print_json({"tables": [o.report for o in outcomes if o.report is not None],
                            "failed": [{"table": o.table, "error": o.error} for o in outcomes if not o.ok]})


def worker_lake_maintenance(
    table: list[str] = TABLE_OPTION,
    older_than: str = OLDER_THAN_OPTION,
    target_file_mb: int = TARGET_OPTION,
    every: str = typer.Option(None, "--every", help="Time between the starts of two passes (default 10m)."),
    allow_recent: bool = ALLOW_RECENT_OPTION,
    once: bool = typer.Option(False, "--once", help="One pass, then exit (1 when a table failed)."),
) -> None:
    """Compaction, snapshot expiry and orphan cleanup of the Iceberg tables on a schedule; one log line per table
    and per pass. Defaults come from FYP_LAKE_MAINTENANCE_*; `fyp up` starts it as `lake-maintenance`."""
    import logging
    import os

    from workers.lake_maintenance import MaintenanceFailed, run

    logging.basicConfig(level=os.environ.get("FYP_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = _maintenance_config(table, older_than, target_file_mb, every, allow_recent)
    with fail_cleanly(*_ERRORS, MaintenanceFailed):
        run(config, once=once)


def register(app: typer.Typer, *, worker: typer.Typer | None = None) -> None:
    app.command()(sql)
    app.command()(tables)
    app.command()(maintain)
    if worker is not None:
        worker.command("lake-maintenance")(worker_lake_maintenance)
