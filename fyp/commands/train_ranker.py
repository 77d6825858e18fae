"""`fyp train ranker`: train the fine multi-task ranker on the training table, report each head's AUC on the
held-out days against popularity and logistic regression, and save a versioned ONNX model to S3."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json
from fyp.commands.train import parse_day

__all__ = ["ranker_command"]


def ranker_command(
    since: str | None = typer.Option(None, "--since", help="First UTC day of training-table rows (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--until", help="Last UTC day of rows, inclusive (YYYY-MM-DD)."),
    test_days: int = typer.Option(1, "--test-days", min=1, help="Held-out tail: the last N days with rows."),
    test_fraction: float | None = typer.Option(
        None, "--test-fraction", min=0.01, max=0.9,
        help="Hold out the last share of rows by time instead of whole days (rows of a single day)."),
    epochs: int = typer.Option(10, "--epochs", min=1, help="Most passes (the validation slice picks the best)."),
    hidden: str = typer.Option("128,64", "--hidden", help="Trunk layer widths, comma-separated."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    save: bool = typer.Option(True, "--save/--no-save", help="Save the model to S3 and move LATEST to it."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation and shuffling."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch CPU threads (default: torch's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Train the ranker (heads: completed, liked, shared, followed, skipped) on training.watch_outcomes."""
    from fyp.config import load_settings
    from fyp.ranking.lake import ranker_sets, read_ranker_rows
    from fyp.ranking.runtime import to_onnx
    from fyp.ranking.store import save as save_s3
    from fyp.ranking.store import serialize
    from fyp.ranking.train import RankerConfig, train_ranker

    first, last = parse_day(since, "--since"), parse_day(until, "--until")
    with fail_cleanly(ValueError, OSError):
        widths = tuple(int(w) for w in hidden.split(",") if w.strip())
        if not widths or min(widths) < 1 or max(widths) > 4096:
            raise ValueError(f"--hidden takes 1..4096 wide layers, got {hidden!r}")
        settings = load_settings()
        config = RankerConfig(hidden=widths, epochs=epochs, lr=lr, test_days=test_days, test_fraction=test_fraction,
                              seed=seed, threads=threads)
        started = time.monotonic()
        with err_console.status("reading training.watch_outcomes …") as status:
            columns = read_ranker_rows(settings, since=first, until=last)
            read_s = time.monotonic() - started
            status.update(f"training on {len(columns['event_time']):,} rows …")
            result = train_ranker(columns, ranker_sets(), config, progress=lambda stage, done, total: status.update(
                f"training on {len(columns['event_time']):,} rows: {stage} {done}/{total}"))
        card = {"spec": result.spec.to_json(), "metrics": [m.__dict__ for m in result.metrics], "rows": result.rows,
                "best_epoch": result.best_epoch, "config": {**config.__dict__, "hidden": list(widths)}}
        version, blob = serialize(to_onnx(result.model, result.spec.width), card)
        saved = None
        if save:
            from fyp.index.snapshot import S3ObjectStore
            from fyp.media.publish import make_s3_client

            key = save_s3(S3ObjectStore(make_s3_client(settings), settings.media_bucket), version, blob)
            saved = f"s3://{settings.media_bucket}/{key}"
    out: dict[str, Any] = {"version": version, "bytes": len(blob), "saved": saved, "rows": result.rows,
                           "best_epoch": result.best_epoch, "metrics": card["metrics"],
                           "seconds": {"read": round(read_s, 2), **result.seconds}}
    if as_json:
        print_json(out)
        return
    table = Table(title=f"AUC per head on the held-out days ({result.rows['test']:,} rows)")
    for column in ("head", "positives", "model", "popularity", "logistic"):
        table.add_column(column, justify="right")
    for m in result.metrics:
        table.add_row(m.head, f"{m.positives:,}", *(f"{v:.4f}" if v is not None else "-"
                                                    for v in (m.auc, m.popularity_auc, m.logistic_auc)))
    console.print(table)
    console.print(f"rows {result.rows}, best epoch {result.best_epoch} of {epochs}, seconds {out['seconds']}")
    console.print(f"saved ranker {version} ({len(blob) / 1e3:.0f} kB): {saved}" if saved else
                  f"ranker {version} not saved (--no-save)")
