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
