"""`fyp verify features`: recompute Redis features from the Iceberg history and compare (fyp.lake.verify)."""

from __future__ import annotations

import math
import time

import typer
from rich.table import Table

from features import ALL_FEATURE_SETS, feature_set_for_entity
from fyp.commands.output import console, fail_cleanly, print_json
from fyp.config import load_settings

__all__ = ["register", "verify_app"]

verify_app = typer.Typer(help="Consistency checks between the online store and the history.", no_args_is_help=True)
ENTITIES = ", ".join(dict.fromkeys(fs.entity.name for fs in ALL_FEATURE_SETS))  # sets may share an entity


def _number(value: float | None) -> str:
    return "NaN" if value is None else f"{value:,.6g}"


def _json_safe(value):
    """NaN and infinities as null, for strict JSON readers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _print_entity(check) -> None:
    colour = {"match": "green", "explained": "yellow"}.get(check.status, "red")
    console.print(f"[bold]{check.feature_set}[/] {check.entity} {check.entity_id}: [{colour}]{check.status}[/]"
                  f"{' (' + ', '.join(check.causes) + ')' if check.causes else ''}; {check.history_rows:,} history "
                  f"rows, Redis as of {check.redis_event_time_ms}, history newest {check.history_event_time_ms}"
                  f"{'; ' + check.note if check.note else ''}", highlight=False)
    if not check.columns:
        return
    table = Table("column", "redis", "recomputed", "abs diff", "rel diff", "result")
    for c in check.columns:
        result = "[green]match[/]" if c.match else (
            f"[yellow]explained: {', '.join(c.explained_by)}[/]" if c.explained_by else "[red]MISMATCH[/]")
        table.add_row(c.column, _number(c.redis), _number(c.recomputed), _number(c.abs_diff) if not c.match else "",
                      f"{c.rel_diff:.2e}" if not c.match else "", result)
    console.print(table)


def _print_summary(summary) -> None:
    console.print(f"[bold]{summary.feature_set}[/]: {summary.entities} entities; "
                  + ", ".join(f"{k} {v}" for k, v in sorted(summary.by_status.items()))
                  + (f"; causes: {', '.join(f'{k} {v}' for k, v in sorted(summary.by_cause.items()))}"
                     if summary.by_cause else ""), highlight=False)
    table = Table("column", "match", "explained", "mismatch", "max abs diff", "max rel diff")
    for name, c in summary.columns.items():
        table.add_row(name, str(c["match"]), str(c["explained"]), str(c["mismatch"]), _number(c["max_abs_diff"]),
                      f"{c['max_rel_diff']:.2e}")
    console.print(table)


def _duration_ms(text: str) -> int:
    from fyp.lake.maintenance import parse_duration

    return int(parse_duration(text).total_seconds() * 1000)


@verify_app.command()
def features(
    entity: str = typer.Option("video", "--entity", help=f"One of: {ENTITIES}; or `all` with --sample."),
    entity_id: list[str] = typer.Option(None, "--id", help="Entity id (repeatable); pairs as `u1:a7`."),
    sample_size: int = typer.Option(None, "--sample", min=1, help="Check N ids drawn from the history instead."),
    since: str = typer.Option(None, "--since", help="With --sample: draw from rows of the last DURATION (e.g. 30m)."),
    seed: int = typer.Option(0, "--seed", help="With --sample: the random seed."),
    commit_delay: str = typer.Option(
        "2m", "--commit-delay", help="Events this recent may be in Redis but not yet committed to the history."),
    as_json: bool = typer.Option(False, "--json", help="Print the checks and summaries as JSON."),
) -> None:
    """Recompute features from the Iceberg history (as Chronon does) and compare with Redis, column by column.

    Exits 1 when a difference has no documented cause (a mismatch, or a missing Redis value): docs/ANALYSTS.md.
    """
    import redis
    from pyiceberg.exceptions import NoSuchTableError

    from connectors.iceberg_tables import catalog
    from featurespec.reference.evaluate import FeatureEvaluator
    from featurespec.reference.sql import SqlTranslationError
    from fyp.lake.history import sample_ids
    from fyp.lake.verify import summarize, verify
    from schemas.tables import ENGAGEMENT_HISTORY

    with fail_cleanly(ValueError, NoSuchTableError, redis.RedisError, OSError):
        if bool(entity_id) == bool(sample_size):
            raise ValueError("give --id (one or more) or --sample N")
        if entity == "all" and not sample_size:
            raise ValueError("--entity all needs --sample")
        feature_sets = ALL_FEATURE_SETS if entity == "all" else (feature_set_for_entity(entity),)
        settings = load_settings()
        table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
        client = settings.redis_client()
        now_ms = int(time.time() * 1000)
        since_ms = now_ms - _duration_ms(since) if since else None
        results, skipped = [], []
        for feature_set in feature_sets:
            try:
                FeatureEvaluator.of(feature_set)
            except SqlTranslationError as exc:  # e.g. a derived column computed by a Python UDF in the job
                if entity != "all":
                    raise
                skipped.append({"feature_set": feature_set.qualified_name, "reason": str(exc)})
                continue
            with console.status(f"recomputing {feature_set.qualified_name} …"):
                ids = entity_id or sample_ids(table, feature_set, sample_size, seed=seed, since_ms=since_ms)
                checks = verify(feature_set, table, client, ids, now_ms=now_ms,
                                commit_delay_ms=_duration_ms(commit_delay))
            results.append((checks, summarize(feature_set, checks)))
    if as_json:
        print_json(_json_safe({"ok": all(s.ok for _, s in results), "skipped": skipped, "results": [
            {"summary": _as_dict(s), "ok": s.ok,
             "entities": [_as_dict(c) | {"matched": c.matched, "mismatched": c.mismatched} for c in checks]}
            for checks, s in results]}))
    else:
        for checks, summary in results:
            if entity_id:
                for check in checks:
                    _print_entity(check)
            _print_summary(summary)
        for skip in skipped:
            console.print(f"[yellow]skipped {skip['feature_set']}[/]: {skip['reason']}", highlight=False)
    if not all(s.ok for _, s in results):
        raise typer.Exit(1)


def _as_dict(value) -> dict:
    import dataclasses

    return dataclasses.asdict(value)


def register(app: typer.Typer) -> None:
    app.add_typer(verify_app, name="verify")
