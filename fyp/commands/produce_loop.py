"""`fyp produce --feed URL`: the closed-loop generator's command (fyp/traffic/feed_loop.py), with a progress bar
and a summary or `--json`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json

__all__ = ["run_closed_loop"]

DEFAULT_DURATION_S = 60.0


def run_closed_loop(url: str, *, users: int, videos: int, seed: int, sessions: int | None, duration: float | None,
                    feed_size: int, concurrency: int, start_ago: float, speed: float, as_json: bool) -> None:
    from fyp.config import load_settings
    from fyp.feed.client import FeedClient
    from fyp.traffic import TrafficConfig, wall_clock_ms
    from fyp.traffic.clock import accelerated_clock
    from fyp.traffic.encoder import FastEncoder
    from fyp.traffic.feed_loop import ClosedLoop, LoopPlan
    from fyp.traffic.ids import RunIds
    from fyp.traffic.model import TrafficModel
    from fyp.traffic.producer import BatchSender, ProducerError
    from schemas.registry import default_registry

    if sessions is None and duration is None:
        duration = DEFAULT_DURATION_S
    with fail_cleanly(ValueError, ProducerError):
        plan = LoopPlan(users=users, sessions=sessions, duration_s=duration, feed_size=feed_size,
                        concurrency=concurrency)
        # No jitter and no late events: the closed loop stamps a page's views in order (closed_loop.space_views).
        config = TrafficConfig(users=users, videos=videos, jitter=timedelta(0))
        model = TrafficModel(config, seed)
        encoder = FastEncoder(default_registry(), model.catalog, RunIds.random(), seed)
        clock = (accelerated_clock(start_ms=wall_clock_ms() - int(start_ago * 1000), speed=speed)
                 if start_ago or speed != 1.0 else wall_clock_ms)
        sender = BatchSender(load_settings().kafka_client_config())
        client = FeedClient(url, timeout_s=5.0)
        loop = ClosedLoop(model, encoder, lambda user, n: client.feed(user, n=n), sender.send, plan, clock=clock,
                          seed=seed)
        try:
            report = loop.run() if as_json else _with_progress(loop, plan)
        finally:
            client.close()
            unacknowledged = sender.close()
    events = sum(report.by_type.values())
    report.failed = unacknowledged
    report.produced = events - unacknowledged

    summary: dict[str, Any] = {**report.as_json(), "seed": seed, "url": url}
    if as_json:
        print_json(summary)
    else:
        _print(summary)
    if report.failed or (report.feeds == 0 and report.feed_errors):
        raise typer.Exit(1)


def _with_progress(loop: Any, plan: Any) -> Any:
    by_sessions = plan.sessions is not None
    total = float(plan.users * plan.sessions) if by_sessions else float(plan.duration_s)
    progress = Progress(TextColumn("[bold]closed loop"), BarColumn(),
                        TextColumn("{task.fields[feeds]:>8,} feeds {task.fields[events]:>10,} events "
                                   "{task.fields[errors]:>5,} errors"),
                        TimeElapsedColumn(), console=err_console)
    with progress:
        task = progress.add_task("loop", total=total, feeds=0, events=0, errors=0)

        def update(report: Any, elapsed: float) -> None:
            progress.update(task, completed=report.sessions if by_sessions else elapsed, feeds=report.feeds,
                            events=sum(report.by_type.values()), errors=sum(report.feed_errors.values()))

        return loop.run(on_progress=update)


def _print(summary: dict[str, Any]) -> None:
    status = "[yellow]interrupted[/]" if summary["interrupted"] else "[green]done[/]"
    latency = summary["feed_latency_ms"]
    console.print(f"{status}: {summary['sessions']:,} sessions, {summary['feeds']:,} feeds "
                  f"(p50 {latency['p50']} ms, p99 {latency['p99']} ms), {summary['feed_errors']:,} feed errors, "
                  f"{summary['retries']:,} retries, {summary['produced']:,} events sent, {summary['failed']:,} "
                  f"failed, {summary['unknown_items']:,} unknown items, {summary['seconds']:.1f} s, seed "
                  f"{summary['seed']}")
    table = Table("arm", "users", "sessions", "impressions", "skips", "watches", "likes", title="per arm")
    for arm, entry in summary["arms"].items():
        by_type = entry["by_type"]
        table.add_row(arm, str(entry["users"]), str(entry["sessions"]), str(by_type.get("impression", 0)),
                      str(by_type.get("skip", 0)), str(by_type.get("watch", 0)), str(by_type.get("like", 0)))
    console.print(table)
