"""`fyp features ENTITY ID`: one entity's live features from Redis, as serving reads them; and the feature-set
workflow (docs/ADDING_FEATURES.md): `features-new`, `features-doc`, `features-restore`, `features-retire`."""

from __future__ import annotations

import time

import redis
import typer
from rich.table import Table

from features import ALL_FEATURE_SETS, READ_VERSIONS
from featurespec import ENTITIES as DECLARED_ENTITIES
from fyp.commands.output import console, err_console, fail_cleanly, print_json
from fyp.serving import FeatureClient

__all__ = ["register"]

ENTITIES = ", ".join(dict.fromkeys(fs.entity.name for fs in ALL_FEATURE_SETS))  # sets may share an entity
ENTITY_NAMES = ", ".join(e.name for e in DECLARED_ENTITIES)  # every entity a new set may be keyed by


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
    feature_set: list[str] = typer.Option(
        None, "--set", help="Only this feature set (repeatable): NAME for every computed version, NAME.vN for one; "
        "default all."),
    as_json: bool = typer.Option(False, "--json", help="Print one result per set as JSON."),
) -> None:
    """Refill Redis from the Iceberg history after Redis lost its data (an empty restart).

    Recomputes every live key of each feature set with the reference evaluator and writes only the keys Redis
    lacks (SET NX), with the TTL each would have had: values the running job wrote since are kept. Also fills a
    new version (`--set NAME.v2`) before readers switch to it.
    """
    from pyiceberg.exceptions import NoSuchTableError

    from connectors.iceberg_tables import catalog
    from featurespec.reference.sql import SqlTranslationError
    from featurespec.versions import select_sets
    from fyp.config import load_settings
    from fyp.lake.restore import restore_feature_set
    from schemas.tables import ENGAGEMENT_HISTORY

    with fail_cleanly(ValueError, NoSuchTableError, redis.RedisError, OSError):
        chosen = select_sets(feature_set, ALL_FEATURE_SETS) if feature_set else ALL_FEATURE_SETS
        settings = load_settings()
        table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
        client = settings.redis_client()
        results, skipped = [], []
        for fs in chosen:
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
    from featurespec.docs import render_feature_reference
    from fyp.config import REPO_ROOT

    path = REPO_ROOT / "docs" / "FEATURES.md"
    text = render_feature_reference(ALL_FEATURE_SETS)
    if check:
        if not path.exists() or path.read_text() != text:
            console.print(f"[red]{path} is out of date[/]: run `fyp features-doc`")
            raise typer.Exit(1)
        return
    path.write_text(text)
    console.print(f"wrote {path}")


def features_new(
    name: str = typer.Argument(..., help="The set's name, lower_snake_case, e.g. video_rewatch."),
    entity: str = typer.Option(..., "--entity", help=f"What it is keyed by: one of {ENTITY_NAMES}."),
    family: str = typer.Option("engagement", "--family", help="The features/ package it goes in."),
) -> None:
    """Scaffold a feature set: features/FAMILY/NAME.py declaring v1, and tests/unit/features/test_feature_NAME.py."""
    from featurespec.scaffold import next_steps, plan, write
    from fyp.config import REPO_ROOT

    with fail_cleanly(ValueError, FileExistsError):
        if any(fs.name == name for fs in ALL_FEATURE_SETS):
            raise ValueError(f"a feature set named {name!r} is already declared; to change it, declare its next "
                             "version beside it (docs/ADDING_FEATURES.md)")
        scaffold = plan(REPO_ROOT, name=name, entity=entity, family=family)
        created = write(scaffold)
    for path in created:
        console.print(f"wrote {path.relative_to(REPO_ROOT)}", highlight=False)
    console.print("next:")
    for number, step in enumerate(next_steps(scaffold), start=1):
        console.print(f"  {number}. {step}", highlight=False)


def features_retire(
    name: str = typer.Argument(..., help="The feature set's name, e.g. video_engagement."),
    version: int = typer.Option(..., "--version", help="The version whose keys to delete."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count the keys, delete nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Delete an old version's Redis keys (SCAN + UNLINK in batches), once nothing computes or reads it."""
    from features.exploration import DECISIONS_KEY_PREFIX
    from features.serving_sets import SERVING_SETS
    from featurespec import key_prefix
    from featurespec.versions import retire_refusal
    from fyp.config import load_settings
    from fyp.serving.retire import retire_prefix

    with fail_cleanly(ValueError, redis.RedisError):
        refusal = retire_refusal(name, version, computed=ALL_FEATURE_SETS, read_versions=READ_VERSIONS,
                                 live_prefixes=[DECISIONS_KEY_PREFIX, *(s.key_prefix for s in SERVING_SETS)])
        if refusal:
            raise ValueError(f"refusing to retire: {refusal}")
        result = retire_prefix(load_settings().redis_client(), key_prefix(name, version), dry_run=dry_run)
    if as_json:
        print_json(result.__dict__)
        return
    verb = "would delete" if dry_run else "deleted"
    count = result.matched if dry_run else result.deleted
    console.print(f"{verb} {count:,} keys under {result.prefix} ({result.matched:,} found)", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(features)
    app.command("features-new")(features_new)
    app.command("features-doc")(features_doc)
    app.command("features-restore")(features_restore)
    app.command("features-retire")(features_retire)
