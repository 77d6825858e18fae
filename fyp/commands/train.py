"""`fyp train two-tower`: train the two-tower model on the training table, report recall@K, save the model."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json

__all__ = ["parse_day", "register"]

train_app = typer.Typer(help="Train models on the training tables.", no_args_is_help=True)


def parse_day(value: str | None, flag: str) -> date | None:
    """A --since/--until value as a date (None stays None); a clear usage error otherwise."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{flag} takes a day as YYYY-MM-DD, got {value!r}") from exc


@train_app.command("two-tower")
def two_tower_command(
    since: str | None = typer.Option(None, "--since", help="First UTC day of training-table rows (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--until", help="Last UTC day of rows, inclusive (YYYY-MM-DD)."),
    test_days: int = typer.Option(1, "--test-days", min=1, help="Held-out tail: the last N days with rows."),
    test_fraction: float | None = typer.Option(
        None, "--test-fraction", min=0.01, max=0.9,
        help="Hold out the last share of positives by time instead of whole days (rows of a single day)."),
    epochs: int = typer.Option(8, "--epochs", min=1,
                                help="Most passes over the training positives (the validation slice picks how many)."),
    validation: float = typer.Option(
        0.1, "--validation-fraction", min=0.0, max=0.5,
        help="Last share of the training positives by time that picks the number of epochs (0: all --epochs)."),
    batch_size: int = typer.Option(512, "--batch-size", min=2, help="Positives per step (and in-batch negatives)."),
    negatives: int = typer.Option(1024, "--negatives", min=0,
                                  help="Extra negatives per step, drawn uniformly from the catalogue."),
    lr: float = typer.Option(3e-3, "--lr", help="Adam learning rate."),
    logq: bool = typer.Option(True, "--logq/--no-logq", help="Sampling-bias (logQ) correction."),
    video_buckets: int = typer.Option(1 << 15, "--video-buckets", help="Hashed video-id embedding rows."),
    save: str = typer.Option("local,s3", "--save", help="Where to save: local, s3, both (local,s3) or none."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation and shuffling."),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads (default: torch's)."),
    oracle_seed: int | None = typer.Option(
        None, "--oracle-seed", help="Also rank with the oracle of the world `fyp produce --seed` generated."),
    oracle_users: int = typer.Option(10_000, "--oracle-users", help="That run's --users."),
    oracle_videos: int = typer.Option(50_000, "--oracle-videos", help="That run's --videos."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Train user and item towers (softmax over in-batch and uniform negatives, logQ-corrected) on the positives
    of training.watch_outcomes (completed, liked or shared); report recall@10/50/100 on the held-out days
    against popularity (and the generator's oracle, with --oracle-seed); save the model."""
    from fyp.config import load_settings
    from fyp.embeddings.data import positives_from_columns
    from fyp.embeddings.lake import read_training_rows
    from fyp.embeddings.store import ModelNotFound, model_name, save_local, save_s3, serialize
    from fyp.embeddings.towers import TowerConfig
    from fyp.embeddings.train import TrainConfig, config_dict, train_two_tower

    targets = {t.strip() for t in save.split(",") if t.strip()} - {"none"}
    if targets - {"local", "s3"}:
        raise typer.BadParameter(f"--save takes local, s3 or none, got {save!r}")
    first, last = parse_day(since, "--since"), parse_day(until, "--until")
    with fail_cleanly(ValueError, ModelNotFound, OSError):
        settings = load_settings()
        tower = TowerConfig(video_buckets=video_buckets)
        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, test_days=test_days,
                             validation_fraction=validation or None,
                             test_fraction=test_fraction, uniform_negatives=negatives, logq=logq, seed=seed,
                             threads=threads)
        timings: dict[str, float] = {}
        with _progress(as_json) as progress:
            task = progress.add_task("reading training.watch_outcomes", total=None)
            t = time.monotonic()
            rows = read_training_rows(settings, since=first, until=last)
            data = positives_from_columns({c: rows.column(c) for c in rows.column_names})
            timings["read_s"] = time.monotonic() - t
            oracle = None
            if oracle_seed is not None:
                from fyp.embeddings.oracle import Oracle
                from fyp.traffic import TrafficConfig

                oracle = Oracle(TrafficConfig(users=oracle_users, videos=oracle_videos), oracle_seed,
                                data.catalogue.video_ids, data.catalogue.first_ms)
            progress.update(task, description=f"training on {len(data):,} positives", completed=0)

            def step(done: int, total: int, loss: float) -> None:
                progress.update(task, total=total, completed=done,
                                description=f"training on {len(data):,} positives, loss {loss:.3f}")

            t = time.monotonic()
            result = train_two_tower(data, tower=tower, config=config, oracle=oracle, progress=step)
            timings["train_s"] = time.monotonic() - t
        info = {**result.info(), "rows": rows.num_rows, "train_config": config_dict(config),
                "tower_config": tower.to_dict(), "timings": {k: round(v, 2) for k, v in timings.items()}}
        version, blob = serialize(result.model, info)
        saved: dict[str, str] = {}
        if "local" in targets:
            saved["local"] = str(save_local(settings.home, version, blob))
        if "s3" in targets:
            from fyp.index.snapshot import S3ObjectStore
            from fyp.media.publish import make_s3_client

            store = S3ObjectStore(make_s3_client(settings), settings.media_bucket)
            saved["s3"] = f"s3://{settings.media_bucket}/{save_s3(store, version, blob)}"
    out = {"model": model_name(version), "version": version, "bytes": len(blob), "saved": saved, **info}
    if as_json:
        print_json(out)
    else:
        _summary(out)


class _progress:
    """A rich progress bar on stderr, or nothing with --json (stdout stays one JSON object)."""

    def __init__(self, quiet: bool) -> None:
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                            TimeElapsedColumn(), console=err_console, disable=quiet)

    def __enter__(self) -> Progress:
        return self.bar.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)


def _summary(out: dict[str, Any]) -> None:
    recall = out["recall"]
    rankers = [r for r in ("model", "popularity", "oracle") if r in recall]
    table = Table(title=f"recall@K on {recall['queries']:,} held-out positives")
    for column in ("K", *rankers, "model / popularity", *(["share of oracle lift"] if "oracle" in recall else [])):
        table.add_column(column, justify="right")
    for k in sorted(recall["model"], key=int):
        cells = [f"{recall[r][k]:.4f}" for r in rankers] + [f"{recall['ratio'][k]:.2f}x"]
        if "oracle_lift" in recall:
            cells.append(f"{recall['oracle_lift'][k]:.2f}")
        table.add_row(k, *cells)
    console.print(table)
    console.print(f"{out['train_positives']:,} training positives, {out['catalogue']:,} videos, "
                  f"{out['users']:,} users, {out['epochs']} epochs, {out['steps']} steps in "
                  f"{out['timings']['train_s']:.1f} s; "
                  f"final loss {out['final_loss']:.3f}")
    for where, path in out["saved"].items():
        console.print(f"saved {out['model']} ({out['bytes'] / 1e6:.1f} MB) {where}: {path}")


def register(app: typer.Typer, *, bench: typer.Typer) -> None:
    from fyp.commands.bench_two_tower import bench_two_tower_command
    from fyp.commands.train_ranker import ranker_command

    bench.command("two-tower")(bench_two_tower_command)

    train_app.command("ranker")(ranker_command)
    app.add_typer(train_app, name="train")
