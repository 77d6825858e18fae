"""`fyp training-set build|verify|list`: point-in-time training tables from the declarations in `training/`."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fyp.commands.output import console, fail_cleanly, print_json

__all__ = ["bench_command", "register", "training_app"]

training_app = typer.Typer(help="Training tables: point-in-time backfill and the served-feature skew check.",
                           no_args_is_help=True)


def _declared(name: str):
    from training import training_set

    return training_set(name)  # ValueError naming the declared sets


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"a day as YYYY-MM-DD, got {text!r}", param_hint=option) from None


@contextmanager
def _bar(quiet: bool):
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True, disable=quiet)
    with bar:
        task = bar.add_task("starting", total=None)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        yield update


@training_app.command("build")
def build_command(
    name: str = typer.Argument(..., help="A training set declared in training/ (see `fyp training-set list`)."),
    since: str = typer.Option(None, "--since", help="First day of spine rows, YYYY-MM-DD (UTC); default: the first."),
    until: str = typer.Option(None, "--until", help="Last day of spine rows, YYYY-MM-DD (UTC, inclusive)."),
    replace: bool = typer.Option(False, "--replace", help="Drop a table built from another declaration first."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Backfill NAME's rows, labels, features and histories as of each row's time into `training.<name>`,
    replacing the days built (docs/TRAINING.md)."""
    from pyiceberg.exceptions import NoSuchTableError

    from connectors.iceberg_tables import catalog
    from fyp.config import load_settings
    from fyp.training.build import build

    first, last = _day(since, "--since"), _day(until, "--until")
    with fail_cleanly(ValueError, NoSuchTableError, OSError), _bar(as_json) as progress:
        declared = _declared(name)
        result = build(catalog(load_settings()), declared, since=first, until=last, replace=replace,
                       progress=progress)
    if as_json:
        print_json(result)
        return
    console.print(f"[bold]{result.table}[/] ({result.training_set}): {result.rows:,} rows over "
                  f"{len(result.days)} day(s) {', '.join(result.days)}; {result.open_rows:,} rows wait for their "
                  f"label horizon", highlight=False)
    table = Table("label", "positive rate")
    for label, rate in result.label_rates.items():
        table.add_row(label, f"{rate:.2%}")
    console.print(table)
    console.print(f"{result.history_rows:,} history rows; backfill {result.backfill_seconds:.1f} s: "
                  f"{result.rows_per_s:,.0f} rows/s, {result.events_per_s:,.0f} events/s; peak RSS "
                  f"{result.peak_rss_mb:,.0f} MB; whole build {result.seconds:.1f} s", highlight=False)


@training_app.command("verify")
def verify_command(
    name: str = typer.Argument(..., help="A training set declared in training/."),
    sample: int = typer.Option(1000, "--sample", min=1, help="Served rows to check."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    in_flight_bound_ms: int | None = typer.Option(
        None, "--in-flight-bound-ms", min=0,
        help="How far behind its serve an event may be and still count as in flight (default: the features job's "
             "flush bound, fyp.training.skew.IN_FLIGHT_BOUND_MS). Raise it to the job's measured lag when it lags."),
    partition_bounds: list[str] = typer.Option(
        [], "--partition-bound-ms", metavar="PARTITION=MS",
        help="The in-flight bound of one Kafka partition of the engagement topic (repeat per partition), capped "
             "at --in-flight-bound-ms. It must hold for the partition's trailing deduplication lane: the largest "
             "lag `fyp demo` prints per partition is its leading lane's, and the demo does not use it as a bound. "
             "Partitions not named have --in-flight-bound-ms."),
    request_bounds: Path | None = typer.Option(
        None, "--request-bounds", exists=True, dir_okay=False, readable=True,
        help="A JSON file of per-request bounds, {request_id: {partition: ms}}: the job's lag measured at each "
             "logged read (`fyp demo` writes one and prints its path). A row of such a request is searched within "
             "its own bounds first (capped at --in-flight-bound-ms), then, where they explain nothing, within the "
             "bounds above."),
    dedup_subtasks: int | None = typer.Option(
        None, "--dedup-subtasks", min=0,
        help="The features job's parallelism while it served these rows (its deduplication's subtasks: per "
             "partition and subtask it applies events in order). Default: the running engagement_features job's, "
             "from Flink's REST API; 0, or no job running: per partition only."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Compare sampled served rows (`training.served_<name>`) with the backfill for the same user, video and time;
    classify every difference. Exits 1 when more than 0.1 % of rows differ for no documented cause."""
    from pyiceberg.exceptions import NoSuchTableError

    from connectors.iceberg_tables import catalog
    from fyp.config import load_settings
    from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
    from fyp.stack.submit import running_parallelism
    from fyp.training.skew import CAUSES, IN_FLIGHT_BOUND_MS, check

    bound = IN_FLIGHT_BOUND_MS if in_flight_bound_ms is None else in_flight_bound_ms
    by_partition = _partition_bounds(partition_bounds)
    by_request = _request_bounds(request_bounds) if request_bounds else None
    settings = load_settings()
    if dedup_subtasks is None:
        dedup_subtasks = running_parallelism(settings, ENGAGEMENT_FEATURES_JOB)
    with fail_cleanly(ValueError, NoSuchTableError, OSError), console.status("comparing served rows …"):
        declared = _declared(name)
        report = check(catalog(settings), declared, sample=sample, seed=seed, in_flight_bound_ms=bound,
                       partition_bounds_ms=by_partition, dedup_subtasks=dedup_subtasks or None,
                       request_bounds_ms=by_request)
    if as_json:
        print_json(report.as_dict())
    else:
        colour = "green" if report.ok else "red"
        console.print(f"[bold]{name}[/]: {report.rows:,} served rows, {report.mismatches:,} differ "
                      f"({report.mismatch_rate:.3%}), [{colour}]{report.unexplained:,} unexplained "
                      f"({report.unexplained_rate:.3%})[/]; {report.columns} columns compared; {report.skipped:,} "
                      "newer than the history skipped", highlight=False)
        table = Table("cause", "rows", "meaning")
        for cause, rows in sorted(report.by_cause.items()):
            table.add_row(cause, f"{rows:,}", "; ".join(CAUSES[c] for c in cause.split("+")))
        console.print(table)
        if report.max_in_flight_gap_ms is not None:
            console.print(f"oldest in-flight event: {report.max_in_flight_gap_ms} ms before its serve (bound "
                          f"{report.in_flight_bound_ms} ms)", highlight=False)
        console.print("in-flight searches per partition" + (
            f" and deduplication subtask ({report.dedup_subtasks} subtasks)" if report.dedup_subtasks else " only"),
            highlight=False)
        if report.partition_bounds_ms:
            console.print("bounds per partition: " + ", ".join(
                f"{p}: {b} ms" for p, b in report.partition_bounds_ms.items()), highlight=False)
        if by_request is not None:
            console.print(f"{report.rows_with_own_bounds:,} of {report.rows:,} rows searched with their request's "
                          "own bounds", highlight=False)
        if report.unexplained_at_search_limit:
            console.print(f"{report.unexplained_at_search_limit:,} of the unexplained rows: a search stopped at its "
                          "time limit with no candidate (it gave up; it did not rule the documented causes out)",
                          highlight=False)
        if report.examples:
            examples = Table("set", "entity", "served at (ms)", "column", "served", "backfilled", "cause",
                             title="examples")
            for e in report.examples:
                examples.add_row(e["set"], e["entity_id"], str(e["served_time_ms"]), e["column"].split("__", 1)[1],
                                 f"{e['served']:.6g}" if e["served"] is not None else "null",
                                 f"{e['backfilled']:.6g}" if e["backfilled"] is not None else "null",
                                 e["cause"] + (" (search at its time limit)" if e.get("search_at_time_limit") else ""))
            console.print(examples)
    if not report.ok:
        raise typer.Exit(1)


def _request_bounds(path: Path) -> dict[str, dict[int, int]]:
    """A --request-bounds file as {request_id: {partition: ms}}; a clear error for anything else."""
    import json

    try:
        raw = json.loads(path.read_text())
        found = {str(request): {int(p): int(ms) for p, ms in bounds.items()} for request, bounds in raw.items()}
    except (ValueError, AttributeError, TypeError) as e:
        raise typer.BadParameter(f"{path}: expected a JSON object {{request_id: {{partition: ms}}}} ({e})",
                                 param_hint="--request-bounds") from None
    if any(p < 0 or ms < 0 for bounds in found.values() for p, ms in bounds.items()):
        raise typer.BadParameter(f"{path}: a negative partition or bound", param_hint="--request-bounds")
    return found


def _partition_bounds(given: list[str]) -> dict[int, int]:
    """`PARTITION=MS` options as {partition: ms}."""
    found: dict[int, int] = {}
    for item in given:
        partition, _, ms = item.partition("=")
        try:
            p, b = int(partition), int(ms)
        except ValueError:
            raise typer.BadParameter(f"{item!r}: expected PARTITION=MS", param_hint="--partition-bound-ms") from None
        if p < 0 or b < 0:
            raise typer.BadParameter(f"{item!r}: negative", param_hint="--partition-bound-ms")
        found[p] = b
    return found


@training_app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="Print the declarations as JSON.")) -> None:
    """The declared training sets: spine, labels, joined sets and histories, and their tables."""
    from training import TRAINING_SETS

    found = [{"name": ts.name, "version": ts.version, "table": ts.table, "served_table": ts.served_table,
              "spine": ts.spine, "labels": {label.column: f"{label.where} within {label.within}" for label in
                                            ts.labels},
              "feature_sets": [fs.qualified_name for fs in ts.feature_sets],
              "histories": [h.qualified_name for h in ts.histories], "description": ts.description}
             for ts in TRAINING_SETS]
    if as_json:
        print_json(found)
        return
    for ts in found:
        console.print(f"[bold]{ts['name']}.v{ts['version']}[/] -> {ts['table']} (served: {ts['served_table']}): "
                      f"{ts['description']}", highlight=False)
        console.print(f"  spine: {ts['spine']}", highlight=False)
        for column, meaning in ts["labels"].items():
            console.print(f"  {column}: {meaning}", highlight=False)
        console.print(f"  features: {', '.join(ts['feature_sets'])}", highlight=False)
        console.print(f"  histories: {', '.join(ts['histories'])}", highlight=False)


def bench_command(
    events: int = typer.Option(1_000_000, "--events", min=1, help="History events to generate and backfill."),
    users: int = typer.Option(100_000, "--users", min=1, help="Distinct viewers in the generated traffic."),
    videos: int = typer.Option(200_000, "--videos", min=1, help="Distinct videos in the generated traffic."),
    days: float = typer.Option(1.0, "--days", min=0.01, help="Days of event time the events spread over."),
    seed: int = typer.Option(11, "--seed", help="Traffic generator seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """The backfill of watch_outcomes over N generated history events, in this process (no stack): rows/s,
    events/s, seconds per stage and memory (fyp/bench/training.py)."""
    from fyp.bench.training import run_training_bench

    with _bar(as_json) as progress:
        result = run_training_bench(events, users=users, videos=videos, days=days, seed=seed, progress=progress)
    if as_json:
        print_json(result)
        return
    table = Table("metric", "value", title="training-set backfill (watch_outcomes)")
    for key, value in result.__dict__.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(training_app, name="training-set")
