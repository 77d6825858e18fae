"""`fyp serve feed`, `fyp feed`, `fyp load-profiles`, `fyp bench feed`, `fyp bench feed-loop`: the feed service, a
feed from it, users' birth dates for it, and its benchmarks (latency and throughput; watch -> next feed)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json

__all__ = ["register"]

URL_OPTION = typer.Option(None, "--url", help="Feed service URL (default FYP_FEED_URL, else 127.0.0.1:8095+offset).")


def _url(url: str | None) -> str:
    from fyp.feed.service import default_port

    return url or os.environ.get("FYP_FEED_URL") or f"http://127.0.0.1:{default_port()}"


def _weights(text: str) -> dict[str, float]:
    from fyp.ranking.combine import DEFAULT_HEAD_WEIGHTS

    weights = dict(DEFAULT_HEAD_WEIGHTS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        head, _, value = part.partition("=")
        try:
            weights[head.strip()] = float(value)
        except ValueError as exc:
            raise typer.BadParameter(f"{part!r}: expected head=number", param_hint="--weights") from exc
    return weights


def serve_feed(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int | None = typer.Option(None, "--port", help="Port (default FYP_FEED_PORT, else 8095 + FYP_PORT_OFFSET)."),
    index_url: str | None = typer.Option(None, "--index-url", help="Index service (candidates) URL (default "
                                                                   "FYP_INDEX_URL, else 127.0.0.1:8090+offset)."),
    model: str = typer.Option("latest", "--model", help="Ranker version to serve, or 'latest' (models/ranker/LATEST)."),
    reload_every: float = typer.Option(60.0, "--reload-every", help="Seconds between checks for a new wanted "
                                                                    "version (0: only POST /v1/model/reload)."),
    candidates: int = typer.Option(500, "--candidates", min=1, max=1000, help="Candidates asked for per feed."),
    keep: int = typer.Option(100, "--keep", min=1, max=1000, help="How many the coarse ranker keeps."),
    weights: str = typer.Option("", "--weights", help="Head weights over the defaults, e.g. 'liked=3,shared=5' "
                                                      "(experiment arms override these)."),
    experiments: Path | None = typer.Option(None, "--experiments", help="A JSON file of experiment declarations to "
                                            "run instead of fyp/experiments/declared.py's (fyp/experiments/load.py)."),
    workers: int = typer.Option(1, "--workers", min=1, max=16, help="Worker processes (each its own ranker and "
                                "model; with more than one, POST /v1/model/reload?version= is refused)."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, max=64, help="Feeds each worker assembles at once "
                                    "(more wait their turn: threads beyond a few only queue on Python's GIL)."),
) -> None:
    """Serve feeds: candidates, filters, coarse ranking, the fine ranker (ONNX), reranking."""
    from fyp.experiments.load import load_experiments
    from fyp.feed.assemble import FeedConfig
    from fyp.feed.service import default_port, serve
    from fyp.ranking.combine import head_weights

    with fail_cleanly(ValueError):
        config = FeedConfig(candidate_k=candidates, coarse_k=keep, weights=_weights(weights))
        declared = load_experiments(experiments) if experiments is not None else None
        for experiment in declared or ():
            for arm in experiment.arms:  # a bad weight would fail every request of the arm: refuse it now
                head_weights(arm.overrides)
    # Checked above; each worker process builds the same again from these JSON-able options.
    serve(host=host, port=port or default_port(), workers=workers, index_url=index_url, model=model,
          reload_every_s=reload_every, concurrency=concurrency, candidate_k=config.candidate_k,
          coarse_k=config.coarse_k, weights=dict(config.weights),
          experiments_file=str(experiments.resolve()) if experiments else None)


def feed(
    user: str = typer.Option(..., "--user", help="User id."),
    n: int = typer.Option(10, "--n", min=1, max=100, help="Feed length."),
    as_json: bool = typer.Option(False, "--json", help="Print the service's JSON."),
    url: str | None = URL_OPTION,
) -> None:
    """A user's feed from the feed service, with each stage's milliseconds."""
    from fyp.feed.client import FeedClient, FeedError

    try:
        body = FeedClient(_url(url)).feed(user, n=n)
    except FeedError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        print_json(body)
        return
    model = body["model"]
    title = (f"feed for {user}: model {model['version']}" if not model["fallback"]
             else f"feed for {user}: NO MODEL, coarse order ({model.get('reason')})")
    table = Table("#", "video_id", "source", "slot", "score", "coarse", title=title)
    for rank, item in enumerate(body["items"], 1):
        table.add_row(str(rank), item["video_id"], item["source"] or "", item["slot"], f"{item['score']:.4f}",
                      f"{item['coarse']:.4f}")
    console.print(table)
    console.print(f"arms {body['arms'] or '-'}; cold start {body['cold_start']}; counts {body['counts']}; "
                  f"filtered {body['filters']}")
    console.print("ms: " + ", ".join(f"{k} {v:.2f}" for k, v in body["timings_ms"].items()))


def bench_feed(
    users: int = typer.Option(200, "--users", min=1, help="Users to draw (those with a recent-seen set, then "
                                                          "made-up new ones to fill)."),
    duration: float = typer.Option(5.0, "--duration", min=0.5, help="Seconds per client count."),
    clients: str = typer.Option("1,4,16", "--clients", help="Client counts, comma-separated."),
    n: int = typer.Option(10, "--n", min=1, max=100, help="Feed length."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    url: str | None = URL_OPTION,
) -> None:
    """Feed latency (p50/p95/p99), feeds/s and per-stage time at 1, 4 and 16 concurrent clients, against a running
    `fyp serve feed`. Targets: p99 <= 50 ms at 1 client, >= 100 feeds/s."""
    from fyp.bench.feed import run_feed_bench
    from fyp.commands.serving import scan_ids
    from fyp.config import load_settings
    from fyp.feed.client import FeedClient, FeedError
    from fyp.serving.client import RECENT_SEEN_PREFIX

    with fail_cleanly(ValueError, FeedError):
        levels = tuple(int(c) for c in clients.split(",") if c.strip())
        if not levels or min(levels) < 1:
            raise ValueError(f"--clients takes positive counts, got {clients!r}")
        found = scan_ids(load_settings().redis_client(), RECENT_SEEN_PREFIX, users)
        drawn = found + [f"bench-new-{i}" for i in range(users - len(found))]
        client = FeedClient(_url(url))
        result = run_feed_bench(lambda user: client.feed(user, n=n), drawn, levels=levels, duration_s=duration)
    result["active_users"] = len(found)
    if as_json:
        print_json(result)
        return
    table = Table("clients", "feeds/s", "p50 ms", "p95 ms", "p99 ms", "errors", "slowest stage (p99 ms)",
                  title=f"fyp bench feed ({result['users']} users, {len(found)} with history)")
    for level in result["levels"]:
        stages = {k: v["p99_ms"] for k, v in level["stages"].items() if k != "total"}
        slowest = max(stages, key=stages.get) if stages else "-"
        table.add_row(str(level["clients"]), f"{level['feeds_per_s']:.1f}", f"{level['p50_ms']:.2f}",
                      f"{level['p95_ms']:.2f}", f"{level['p99_ms']:.2f}", str(level["errors"]),
                      f"{slowest} {stages.get(slowest, 0):.2f}")
    console.print(table)
    console.print(f"targets {result['targets']}; load average {result['load_average']}")


def bench_feed_loop(
    probes: int = typer.Option(20, "--probes", min=1, max=80, help="Watches to follow, one after another (each "
                               "watches its own video of the run's market)."),
    users: int = typer.Option(4, "--users", min=1, help="Probe users, taking turns (at most --probes)."),
    background_rate: float = typer.Option(0, "--background-rate", min=0, help="Generator events/s during the "
                                          "probes (0: none)."),
    timeout: float = typer.Option(10, "--timeout", min=0.1, max=120, help="Seconds a probe waits for each change "
                                  "before it counts as missing."),
    setup_timeout: float = typer.Option(240, "--setup-timeout", min=1, help="Seconds to wait for the features job "
                                        "to write the run's market and users."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    url: str | None = URL_OPTION,
) -> None:
    """Watch -> next feed: p50/p95/p99 from a produced Watch to the video leaving the user's feed, the user's
    features reflecting it, and the fine ranker's scores changing, against a running `fyp serve feed` (with `fyp
    serve index` and the engagement_features job). Target: p99 <= 1 s."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fyp.bench.feed_loop import FEED_N, FeedLoopError, run_feed_loop
    from fyp.config import load_settings
    from fyp.feed.client import FeedClient, FeedError
    from fyp.stack.process import StackError
    from fyp.traffic.producer import ProducerError

    if users > probes:
        raise typer.BadParameter(f"at most --probes ({probes}) users", param_hint="--users")
    client = FeedClient(_url(url))

    def call(user: str, at_ms: int) -> dict:
        try:
            return client.feed(user, n=FEED_N, explain=True, at_ms=at_ms)
        except FeedError as exc:
            if exc.status == 503:  # the feed service is up; its candidate source is not
                raise FeedError(503, f"{exc.detail}; start the index service: fyp serve index") from exc
            raise

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True, disable=as_json)
    with fail_cleanly(StackError, FeedError, FeedLoopError, ProducerError, ValueError), bar:
        client.model()  # fails at once, saying what to start, when no feed service answers
        task = bar.add_task("feed-loop", total=probes)
        result = run_feed_loop(load_settings(), call, probes=probes, users=users, background_rate=background_rate,
                               timeout_s=timeout, setup_timeout_s=setup_timeout,
                               on_progress=lambda done, text: bar.update(task, completed=done, description=text))
    if as_json:
        print_json(result)
        return
    table = Table("after a watch", "p50 ms", "p95 ms", "p99 ms", "max ms", "resolved", "missing", "p99 <= 1 s",
                  title=f"fyp bench feed-loop: {probes} probes, {result['users']} users, market {result['market']}")
    labels = {"left_feed": "video left the next feed", "features": "user features reflect it",
              "fine_scores": "fine scores changed"}
    for name, label in labels.items():
        s = result[name]
        table.add_row(label, *(f"{s[k]:,.1f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
                      str(s["samples"]), str(s["missing"]), "yes" if result["target_met"][name] else "no")
    console.print(table)
    model = result["model"]
    console.print(f"model {model.get('version') or 'none (coarse fallback: fine scores not measurable)'}; "
                  f"skipped {result['skipped']}; poll errors {result['poll_errors']}; "
                  f"background {result['background'] or 'none'}; setup {result['setup_s']} s; "
                  f"load average {result['load_average']}")


def load_profiles(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with a header row: user_id,birth_date "
                                                                       "(YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write users' birth dates to their profile hashes (fyp:user:v1:{user}), which the feed reads to decide who
    may see age-restricted videos. Every row is checked before any is written."""
    from fyp.config import load_settings
    from fyp.feed.profiles import read_profiles_csv, today, write_profiles

    with fail_cleanly(ValueError, OSError):
        rows = read_profiles_csv(path)
        written = write_profiles(load_settings().redis_client(), rows, on=today(int(time.time() * 1000)))
    if as_json:
        print_json({"path": str(path), "written": written})
        return
    console.print(f"{written} profiles written from {path}")


def register(app: typer.Typer, *, serve: typer.Typer, bench: typer.Typer) -> None:
    """Add `feed` to the app, `serve feed` and `bench feed` to their groups (declared in fyp/cli.py)."""
    serve.command("feed")(serve_feed)
    app.command("feed")(feed)
    bench.command("feed")(bench_feed)
    bench.command("feed-loop")(bench_feed_loop)
    app.command("load-profiles")(load_profiles)
