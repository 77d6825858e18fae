"""`fyp train two-tower`: train the two-tower model on the Iceberg history, report recall@K, save the model."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json

__all__ = ["register"]

train_app = typer.Typer(help="Train models on the Iceberg history.", no_args_is_help=True)


@train_app.command("two-tower")
def two_tower_command(
    epochs: int = typer.Option(3, "--epochs", min=1, help="Passes over the training positives."),
    batch_size: int = typer.Option(512, "--batch-size", min=2, help="Positives per step (and in-batch negatives)."),
    lr: float = typer.Option(3e-3, "--lr", help="Adam learning rate."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", min=0.01, max=0.9,
                                        help="Held-out tail of positives, by time (a fraction, not a percent)."),
    logq: bool = typer.Option(True, "--logq/--no-logq", help="Sampling-bias (logQ) correction."),
    since_hours: float | None = typer.Option(None, "--since-hours", help="Only history rows this recent."),
    history_len: int = typer.Option(20, "--history-len", help="Positives the user tower reads."),
    video_buckets: int = typer.Option(1 << 15, "--video-buckets", help="Hashed video-id embedding rows."),
    save: str = typer.Option("local,s3", "--save", help="Where to save: local, s3, both (local,s3) or none."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation and shuffling."),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads (default: torch's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Train user and item towers (in-batch softmax, logQ-corrected) on history.engagement_events; report
    recall@10/50/100 on the held-out tail against a popularity baseline, as a ratio; save the model."""
    from fyp.config import load_settings
    from fyp.embeddings.content import ContentEncoder
    from fyp.embeddings.data import interactions_from_columns
    from fyp.embeddings.lake import read_history
    from fyp.embeddings.store import ModelNotFound, model_name, save_local, save_s3, serialize
    from fyp.embeddings.towers import TowerConfig
    from fyp.embeddings.train import TrainConfig, config_dict, train_two_tower

    targets = {t.strip() for t in save.split(",") if t.strip()} - {"none"}
    if targets - {"local", "s3"}:
        raise typer.BadParameter(f"--save takes local, s3 or none, got {save!r}")
    with fail_cleanly(ValueError, ModelNotFound, OSError):
        settings = load_settings()
        tower = TowerConfig(history_len=history_len, video_buckets=video_buckets)
        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, test_fraction=test_fraction, logq=logq,
                             seed=seed, threads=threads)
        timings: dict[str, float] = {}
        with _progress(as_json) as progress:
            task = progress.add_task("reading history.engagement_events", total=None)
            t = time.monotonic()
            since = datetime.now(UTC) - timedelta(hours=since_hours) if since_hours else None
            rows = read_history(settings, since=since)
            data = interactions_from_columns({c: rows.column(c) for c in rows.column_names},
                                             history_len=history_len)
            timings["read_s"] = time.monotonic() - t
            progress.update(task, description=f"encoding {len(data.videos):,} videos (MiniLM)", total=None)
            t = time.monotonic()
            content = ContentEncoder().encode(data.videos)
            timings["content_s"] = time.monotonic() - t
            progress.update(task, description=f"training on {len(data):,} positives", completed=0)

            def step(done: int, total: int, loss: float) -> None:
                progress.update(task, total=total, completed=done,
                                description=f"training on {len(data):,} positives, loss {loss:.3f}")

            t = time.monotonic()
            result = train_two_tower(data, content, tower=tower, config=config, progress=step)
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
    table = Table(title=f"recall@K on {recall['queries']:,} held-out positives")
    for column in ("K", "two-tower", "popularity", "ratio"):
        table.add_column(column, justify="right")
    for k in sorted(recall["model"], key=int):
        table.add_row(k, f"{recall['model'][k]:.4f}", f"{recall['popularity'][k]:.4f}", f"{recall['ratio'][k]:.2f}x")
    console.print(table)
    console.print(f"{out['train_positives']:,} training positives, {out['catalogue']:,} videos, "
                  f"{out['users']:,} users, {out['steps']} steps in {out['timings']['train_s']:.1f} s; "
                  f"final loss {out['final_loss']:.3f}")
    for where, path in out["saved"].items():
        console.print(f"saved {out['model']} ({out['bytes'] / 1e6:.1f} MB) {where}: {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
