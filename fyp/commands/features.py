"""`fyp features ENTITY ID`: one entity's live features from Redis, as serving reads them."""

from __future__ import annotations

import time

import redis
import typer
from rich.table import Table

from features import ALL_FEATURE_SETS
from fyp.commands.output import console, err_console, fail_cleanly, print_json
from fyp.serving import FeatureClient

__all__ = ["register"]

ENTITIES = ", ".join(dict.fromkeys(fs.entity.name for fs in ALL_FEATURE_SETS))  # sets may share an entity


def features(
    entity: str = typer.Argument(..., help=f"One of: {ENTITIES}."),
    entity_id: list[str] = typer.Argument(..., help="The id; two parts for pairs, e.g. `u1 a7` for user_author."),
    as_json: bool = typer.Option(False, "--json", help="Print the features as JSON."),
) -> None:
    """Show an entity's features as of now (windows expired and decays applied at read time)."""
    with fail_cleanly(ValueError, redis.RedisError):
        found = FeatureClient.from_settings().get(entity, entity_id[0] if len(entity_id) == 1 else entity_id)
    if found is None:
        # On stderr: with --json, stdout stays empty rather than holding text that is not JSON.
        err_console.print(f"[yellow]no features for {entity} {' '.join(entity_id)}[/] (no events yet, or expired)")
        raise typer.Exit(1)
    if as_json:
        print_json({"entity": found.entity, "id": found.entity_id, "event_time_ms": found.event_time_ms,
                    "update_time_ms": found.update_time_ms, "features": found.values})
        return
    age_s = time.time() - found.event_time_ms / 1000
    table = Table("feature", "value", title=f"{entity} {found.entity_id} (last event {age_s:.1f} s ago)")
    for name, value in found.values.items():
        table.add_row(name, f"{value:,.4g}")
    console.print(table)


def features_restore(
    feature_set: list[str] = typer.Option(None, "--set", help="Only this feature set (repeatable); default all."),
    as_json: bool = typer.Option(False, "--json", help="Print one result per set as JSON."),
) -> None:
    """Refill Redis from the Iceberg history after Redis lost its data (an empty restart).

    Recomputes every live key of each feature set with the reference evaluator and writes only the keys Redis
    lacks (SET NX), with the TTL each would have had: values the running job wrote since are kept.
    """
    from pyiceberg.exceptions import NoSuchTableError

    from connectors.iceberg_tables import catalog
    from fyp.bench.peers.sql import SqlTranslationError
    from fyp.config import load_settings
    from fyp.lake.restore import restore_feature_set
    from schemas.tables import ENGAGEMENT_HISTORY

    known = {fs.name: fs for fs in ALL_FEATURE_SETS}
    with fail_cleanly(ValueError, NoSuchTableError, redis.RedisError, OSError):
        unknown = sorted(set(feature_set or ()) - set(known))
        if unknown:
            raise ValueError(f"unknown feature set {', '.join(unknown)}; known: {', '.join(known)}")
        settings = load_settings()
        table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
        client = settings.redis_client()
        results, skipped = [], []
        for fs in (known[n] for n in feature_set) if feature_set else ALL_FEATURE_SETS:
            with err_console.status(f"restoring {fs.qualified_name} …") as status:
                try:
                    result = restore_feature_set(
                        fs, table, client, now_ms=int(time.time() * 1000),
                        progress=lambda stage, n, name=fs.qualified_name: status.update(
                            f"restoring {name}: {n:,} {stage}"))
                except SqlTranslationError as exc:  # computed by a Python function in the job only
                    skipped.append({"feature_set": fs.qualified_name, "reason": str(exc)})
                    continue
            results.append(result)
    if as_json:
        print_json({"results": [r.__dict__ | {"keys_per_s": round(r.keys_per_s, 1)} for r in results],
                    "skipped": skipped})
        return
    table_out = Table("feature set", "history rows", "entities", "written", "kept", "expired", "seconds", "keys/s")
    for r in results:
        table_out.add_row(r.feature_set, f"{r.history_rows:,}", f"{r.entities:,}", f"{r.written:,}", f"{r.kept:,}",
                          f"{r.expired:,}", f"{r.seconds:.1f}", f"{r.keys_per_s:,.0f}")
    console.print(table_out)
    for skip in skipped:
        console.print(f"[yellow]skipped {skip['feature_set']}[/]: {skip['reason']}", highlight=False)


def features_doc(
    check: bool = typer.Option(False, "--check", help="Exit 1 if docs/FEATURES.md is out of date."),
) -> None:
    """Regenerate docs/FEATURES.md from the feature declarations."""
    from fyp.config import REPO_ROOT
    from udfs.feature_docs import render_feature_reference

    path = REPO_ROOT / "docs" / "FEATURES.md"
    text = render_feature_reference(ALL_FEATURE_SETS)
    if check:
        if not path.exists() or path.read_text() != text:
            console.print(f"[red]{path} is out of date[/]: run `fyp features-doc`")
            raise typer.Exit(1)
        return
    path.write_text(text)
    console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command()(features)
    app.command("features-doc")(features_doc)
    app.command("features-restore")(features_restore)
