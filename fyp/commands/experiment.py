"""`fyp experiment report NAME`: an A/B experiment's metrics per arm from the Iceberg engagement history, with
intervals, each arm against control, and the sample-ratio-mismatch check (fyp/experiments/report.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json
from fyp.config import load_settings

if TYPE_CHECKING:
    from fyp.experiments.report import ExperimentReport

__all__ = ["register"]

experiment_app = typer.Typer(help="A/B experiments: reports from the engagement history.", no_args_is_help=True)
_MAX_NAME_CHARS = 64  # fyp/experiments/spec.py MAX_NAME_CHARS


def _ms(text: str | None, option: str) -> int | None:
    """An ISO date or time (naive = UTC) as epoch ms."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: give an ISO date or time, e.g. 2026-12-06 or 2026-12-06T05:00") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def _expected_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError, RESTError

    return (ValueError, NoSuchTableError, NoSuchNamespaceError, RESTError, OSError, BotoCoreError, ClientError)


@contextmanager
def _progress_bar(shown: bool) -> Iterator[Callable[[str, int], Callable[[int], None]] | None]:
    """A rich bar per scan pass on stderr (so `--json` stays clean on stdout), or None."""
    if not shown:
        yield None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err_console, transient=True)

    def start(name: str, rows: int) -> Callable[[int], None]:
        task = bar.add_task(f"scanning {name} (rows)", total=rows)
        return lambda done: bar.advance(task, done)

    with bar:
        yield start


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


@experiment_app.command()
def report(
    name: str = typer.Argument(..., help="The experiment: the part before ':' in its arm ids."),
    since: str = typer.Option(None, "--since", help="Only events at or after this ISO date/time (UTC if naive)."),
    until: str = typer.Option(None, "--until", help="Only events before this ISO date/time (exclusive)."),
    control: str = typer.Option(None, "--control", help="The arm to compare with (default: the first declared)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    progress: bool = typer.Option(False, "--progress", help="A progress bar per scan pass, on stderr."),
) -> None:
    """Each metric per arm (mean per user, 95 % interval), each arm against control (Welch's test) and the SRM
    check, from the impressions whose arm ids name experiment NAME and their users' later events."""
    with fail_cleanly(*_expected_errors()):
        if not 0 < len(name) <= _MAX_NAME_CHARS or ":" in name:
            raise ValueError(f"experiment name {name!r}: 1-{_MAX_NAME_CHARS} characters, no ':'")
        since_ms, until_ms = _ms(since, "--since"), _ms(until, "--until")
        if since_ms is not None and until_ms is not None and since_ms >= until_ms:
            raise ValueError(f"--since {since} is not before --until {until}")
        from connectors.iceberg_tables import ENGAGEMENT_HISTORY, catalog
        from fyp.experiments.declared import EXPERIMENTS
        from fyp.experiments.history import fold_window
        from fyp.experiments.report import build_report  # pandas and scipy: only for this command

        declared = next((e for e in EXPERIMENTS if e.name == name), None)
        table = catalog(load_settings()).load_table(ENGAGEMENT_HISTORY)
        with _progress_bar(progress) as bar:
            exposures, per_user = fold_window(table, name, since_ms=since_ms, until_ms=until_ms, progress=bar)
        result = build_report(
            exposures, per_user, name, declared_arms=declared.arm_names() if declared else (),
            weights={a.name: a.weight for a in declared.arms} if declared else None, control=control,
            since_ms=since_ms, until_ms=until_ms)
    if as_json:
        print_json(result.to_dict())
        return
    print_report(result)


def print_report(result: ExperimentReport) -> None:
    """The report as rich tables: users per arm, then each metric per arm against control, then SRM and notes."""
    name = result.experiment
    arms = [a.arm for a in result.arms]
    counts = Table("arm", "users", "impressions", "declared", title=f"experiment {name}: control {result.control}")
    for a in result.arms:
        counts.add_row(a.arm, f"{a.users:,}", f"{a.impressions:,}", "yes" if a.declared else "no")
    console.print(counts)
    metrics = Table("metric", "arm", "users", "mean [95 % CI]", "vs control", "95 % CI", "p (Welch)")
    for metric in result.metrics:
        for arm, summary in zip(arms, metric.arms, strict=True):
            c = metric.comparisons.get(arm)
            metrics.add_row(
                metric.name, arm, str(summary.users) if summary else "0",
                f"{_number(summary.mean)} [{_number(summary.ci_low)}, {_number(summary.ci_high)}]" if summary else "-",
                "control" if arm == result.control else (_number(c.difference) if c else "-"),
                f"[{_number(c.ci_low)}, {_number(c.ci_high)}]" if c else "", _number(c.p_value, 3) if c else "")
    console.print(metrics)
    srm = result.srm
    verdict = "[bold red]MISMATCH[/]" if srm.mismatch else "ok"
    console.print(f"SRM ({result.weights_source} weights): users {srm.users}, expected "
                  f"{ {k: round(v, 1) for k, v in srm.expected.items()} }, p = {srm.p_value:.3g}: {verdict}")
    if result.conflicted_users:
        console.print(f"conflicted users (two arms): {result.conflicted_users}, e.g. {result.conflicted_samples}")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")
