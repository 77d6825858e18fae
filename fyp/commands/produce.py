"""`fyp produce`: send synthetic engagement traffic to fyp.engagement.v1."""

from __future__ import annotations

import secrets
from datetime import timedelta

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fyp.commands.output import console, err_console, fail_cleanly, print_json
from fyp.config import load_settings
from fyp.traffic import TrafficConfig, TrafficGenerator, wall_clock_ms
from fyp.traffic.clock import accelerated_clock
from fyp.traffic.producer import ProducePlan, ProduceReport, ProducerError, produce

__all__ = ["register"]

DEFAULT_DURATION_S = 60.0
DEFAULT_RATE = 10_000  # events per second of open-loop traffic

def produce_command(
    rate: float | None = typer.Option(
        None, "--rate", help=f"Events per second; 0 = as fast as possible (default {DEFAULT_RATE:,}; not with --feed, "
                             "whose users' sessions set the pace)."),
    duration: float | None = typer.Option(
        None,
        "--duration",
        help=f"Seconds to run (default {DEFAULT_DURATION_S:.0f} unless --events is given).",
    ),
    events: int | None = typer.Option(None, "--events", help="Stop after this many events."),
    users: int = typer.Option(10_000, "--users", help="Number of viewers."),
    videos: int = typer.Option(50_000, "--videos", help="Initial number of videos (uploads add more)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default: random; printed)."),
    late_fraction: float = typer.Option(0.0, "--late-fraction", help="Share of views with old timestamps."),
    malformed_fraction: float = typer.Option(
        0.0, "--malformed-fraction", help="Share of bad events (DLQ tests)."
    ),
    start_ago: float = typer.Option(
        0.0, "--start-ago", help="Event time starts this many seconds before now (default 0: the wall clock)."),
    speed: float = typer.Option(
        1.0, "--speed", help="Event-time seconds per wall-clock second (with --start-ago: cover the past fast)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    feed: str | None = typer.Option(
        None, "--feed", help="Closed loop: simulated users request GET URL/v1/feed and react to what it shows "
                             "(docs/FEED.md, 'The closed loop')."),
    sessions: int | None = typer.Option(None, "--sessions", help="With --feed: sessions per user (else --duration)."),
    feed_size: int = typer.Option(10, "--feed-size", help="With --feed: videos per feed request (1..100)."),
    concurrency: int = typer.Option(4, "--concurrency", help="With --feed: sessions running at once (1..64)."),
) -> None:
    """Produce synthetic engagement events (Avro, key = user id) to fyp.engagement.v1; with --feed, in a closed
    loop with a feed service."""
    seed = seed if seed is not None else secrets.randbits(31)
    if feed is not None:
        from fyp.commands.produce_loop import run_closed_loop

        with fail_cleanly(ValueError):
            if events is not None or rate is not None or late_fraction or malformed_fraction:
                raise ValueError("--events, --rate, --late-fraction and --malformed-fraction are for open-loop "
                                 "traffic; with --feed give --sessions or --duration")
            if start_ago < 0 or speed <= 0:
                raise ValueError("--start-ago must be >= 0 and --speed > 0")
        run_closed_loop(feed, users=users, videos=videos, seed=seed, sessions=sessions,
                        duration=duration, feed_size=feed_size,
                        concurrency=concurrency, start_ago=start_ago, speed=speed, as_json=as_json)
        return
    if sessions is not None:
        err_console.print("[bold red]error:[/] --sessions needs --feed URL")
        raise typer.Exit(2)
    if duration is None and events is None:
        duration = DEFAULT_DURATION_S
    rate = DEFAULT_RATE if rate is None else rate
    with fail_cleanly(ProducerError, ValueError):
        config = TrafficConfig(
            users=users, videos=videos, late_fraction=late_fraction, malformed_fraction=malformed_fraction
        )
        plan = ProducePlan(
            rate=rate,
            duration=timedelta(seconds=duration) if duration is not None else None,
            max_events=events,
        )
        if start_ago < 0 or speed <= 0:
            raise ValueError("--start-ago must be >= 0 and --speed > 0")
        options = {}
        if start_ago or speed != 1.0:
            options["clock"] = accelerated_clock(start_ms=wall_clock_ms() - int(start_ago * 1000), speed=speed)
        generator = TrafficGenerator(config, seed, **options)
        client = load_settings().kafka_client_config()
        if as_json:
            report = produce(generator, plan, client_config=client)
        else:
            report = _with_progress(generator, plan, client, duration, events)
    if as_json:
        print_json({**report.as_json(), "seed": seed})
    else:
        _summary(report, seed)
    if report.failed:
        raise typer.Exit(1)


def _with_progress(
    generator: TrafficGenerator,
    plan: ProducePlan,
    client: dict[str, str],
    duration: float | None,
    events: int | None,
) -> ProduceReport:
    # The bar follows whichever limit is set; with both, the event count.
    by_events = events is not None
    total = float(events) if by_events else float(duration or 0)
    progress = Progress(
        TextColumn("[bold]producing"),
        BarColumn(),
        TextColumn("{task.fields[sent]:>12,} events  {task.fields[rate]:>9,.0f}/s"),
        TimeElapsedColumn(),
        console=err_console,
    )
    with progress:
        task = progress.add_task("produce", total=total, sent=0, rate=0.0)

        def update(sent: int, elapsed: float) -> None:
            done = sent if by_events else elapsed
            progress.update(task, completed=done, sent=sent, rate=sent / elapsed if elapsed else 0.0)

        return produce(generator, plan, client_config=client, on_progress=update)


def _summary(report: ProduceReport, seed: int) -> None:
    status = "[yellow]interrupted[/]" if report.interrupted else "[green]done[/]"
    console.print(
        f"{status}: {report.produced:,} events in {report.seconds:.1f} s ({report.rate:,.0f}/s), "
        f"{report.failed:,} failed, seed {seed}"
    )
    console.print(", ".join(f"{name} {n:,}" for name, n in sorted(report.by_type.items())))


def register(app: typer.Typer) -> None:
    app.command("produce")(produce_command)
