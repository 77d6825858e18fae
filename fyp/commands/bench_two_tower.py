"""`fyp bench two-tower`: the two-tower model on a generated world, against popularity and the oracle.

Builds the world's training positives through the training-set code (fyp.embeddings.world: traffic, the
features job's decoder, the point-in-time backfill), trains on all days but the last, and prints recall@10/50/100
of the model, popularity and the generator's oracle, and the share of the oracle's lift the model reaches.
Needs no stack: nothing is read from or written to a service, and no model is saved.
"""

from __future__ import annotations

import time
from dataclasses import replace

import typer
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json

__all__ = ["bench_two_tower_command"]


def bench_two_tower_command(
    users: int = typer.Option(500, "--users", min=1, max=100_000, help="Users of the generated world."),
    videos: int = typer.Option(1_500, "--videos", min=1, max=1_000_000, help="Initial videos of the world."),
    days: int = typer.Option(3, "--days", min=2, max=60, help="Days of traffic; the last one is held out."),
    views_per_day: int = typer.Option(16_000, "--views-per-day", min=500, max=1_000_000,
                                      help="Views per day (a multiple of 500)."),
    world_seed: int = typer.Option(11, "--world-seed", help="Seed of the generated world and its traffic."),
    epochs: int = typer.Option(8, "--epochs", min=1, max=100,
                               help="Most passes over the training positives (the validation slice picks how many)."),
    batch_size: int = typer.Option(128, "--batch-size", min=2, max=65_536, help="Positives per step."),
    lr: float = typer.Option(1e-3, "--lr", min=1e-6, max=1.0, help="Adam learning rate."),
    small_tables: bool = typer.Option(
        True, "--small-tables/--default-tables",
        help="Hash tables sized for a world of thousands of videos (the unit test's), or the production sizes."),
    popularity: bool = typer.Option(
        False, "--popularity-towers/--id-towers",
        help="The towers of fyp.embeddings.world.POPULARITY_TOWERS (no video ids, the video's decayed counts, no "
             "user features; backfills video_engagement too) instead of the default ones."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation and shuffling."),
    threads: int = typer.Option(2, "--threads", min=1, max=256, help="torch CPU threads."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Train and score the two-tower model on a generated world (no stack needed)."""
    from fyp.embeddings.oracle import Oracle
    from fyp.embeddings.towers import TowerConfig
    from fyp.embeddings.train import TrainConfig, config_dict, train_two_tower
    from fyp.embeddings.world import POPULARITY_TOWERS, SMALL_TOWERS, World, world_positives

    with fail_cleanly(ValueError):
        world = World(users=users, videos=videos, seed=world_seed, days=days, views_per_day=views_per_day)
        tower = SMALL_TOWERS if small_tables else TowerConfig()
        if popularity:
            tower = replace(tower, video_ids=False, user_feature_columns=(),
                            video_feature_columns=POPULARITY_TOWERS.video_feature_columns)
        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, threads=threads)
        started = time.monotonic()
        if not as_json:
            err_console.print(f"building {world.views:,} views over {days} days through the backfill ...")
        data = world_positives(world, tower.video_feature_columns)
        built_s = time.monotonic() - started
        oracle = Oracle(world.traffic, world.seed, data.catalogue.video_ids, data.catalogue.first_ms)
        if not as_json:
            err_console.print(f"training on {len(data):,} positives ...")
        result = train_two_tower(data, tower=tower, config=config, oracle=oracle)
    history = [len(h) for h in data.recent_positives]
    out = {"world": {"users": users, "videos": videos, "days": days, "views_per_day": views_per_day,
                     "seed": world_seed, "positives": len(data), "catalogue": len(data.catalogue),
                     "mean_history": round(sum(history) / max(len(history), 1), 1)},
           **result.info(), "train_config": config_dict(config), "tower_config": tower.to_dict(),
           "timings": {"build_s": round(built_s, 1), "train_s": round(result.seconds, 1)}}
    if as_json:
        print_json(out)
        return
    recall = out["recall"]
    table = Table(title=f"recall@K on {recall['queries']:,} held-out positives (last day)")
    for column in ("K", "model", "popularity", "oracle", "share of the oracle's lift"):
        table.add_column(column, justify="right")
    for k in sorted(recall["model"], key=int):
        table.add_row(k, *(f"{recall[r][k]:.4f}" for r in ("model", "popularity", "oracle")),
                      f"{recall['oracle_lift'][k]:.2f}")
    console.print(table)
    console.print(f"{out['world']['positives']:,} positives, mean history {out['world']['mean_history']}, "
                  f"{result.epochs} epochs; built in {built_s:.0f} s, trained and ranked in {result.seconds:.0f} s")

