"""`fyp serve index`, `fyp similar`, `fyp candidates`, `fyp index reembed`, `fyp bench index`,
`fyp worker user-embeddings`, `fyp worker candidate-sets`: the video ANN index, candidate generation, moving the
index to a retrained model, and their benchmark."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import typer
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json

__all__ = ["register"]


def _default_url() -> str:
    from fyp.index.config import default_port

    return os.environ.get("FYP_INDEX_URL") or f"http://127.0.0.1:{default_port()}"


NAMED_MODEL_SOURCES = ("auto", "local", "s3", "projection")  # what `load_model` takes besides a file path
URL_OPTION = typer.Option(None, "--url", help="Index service URL (default FYP_INDEX_URL, else 127.0.0.1:8090+offset).")


def serve_index(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int | None = typer.Option(None, "--port", help="Port (default FYP_INDEX_PORT, else 8090 + FYP_PORT_OFFSET)."),
    name: str = typer.Option("videos", "--name", help="Index name; snapshots go to index-snapshots/NAME/."),
    dim: int = typer.Option(64, "--dim", help="Vector dimension (a restored snapshot's wins)."),
    model: str | None = typer.Option(
        None, "--model", help="The embedding model served (its vectors only; other models' refused). Default: the "
                              "restored snapshot's, else the newest trained model, else content-projection-v1."),
    bucket: str | None = typer.Option(None, "--bucket", help="S3 bucket for snapshots (default: the media bucket)."),
    snapshot_every: float = typer.Option(300.0, "--snapshot-every", help="Seconds between snapshots; 0 = on request."),
    keep_snapshots: int = typer.Option(3, "--keep-snapshots", help="Snapshots kept in S3."),
    restore: bool = typer.Option(True, "--restore/--no-restore", help="Start from the latest snapshot."),
    replica: str | None = typer.Option(None, "--replica", help="Replica id (default host-pid); names the group."),
) -> None:
    """Serve similar-video and candidate search from a ScaNN index fed by fyp.video-embeddings.v1."""
    from fyp.config import load_settings
    from fyp.index.config import ServiceConfig, default_port
    from fyp.index.service import serve

    with fail_cleanly(ValueError):
        config = ServiceConfig(
            name=name,
            dim=dim,
            model=model,
            snapshot_every_s=snapshot_every,
            keep_snapshots=keep_snapshots,
            restore=restore,
            **({"replica_id": replica} if replica else {}),
        )
    serve(load_settings(), config, host=host, port=port or default_port(), bucket=bucket)


def _get(url: str | None, path: str, params: dict[str, Any]) -> dict[str, Any]:
    base = (url or _default_url()).rstrip("/")
    try:
        response = httpx.get(f"{base}{path}", params=params, timeout=10)
    except httpx.HTTPError as exc:
        err_console.print(
            f"[bold red]error:[/] index service not reachable at {base} ({exc}); start it with `fyp serve index`"
        )
        raise typer.Exit(1) from exc
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        err_console.print(f"[bold red]error:[/] {response.status_code}: {detail}")
        raise typer.Exit(1)
    return response.json()


def _show(body: dict[str, Any], title: str) -> None:
    table = Table("#", "video_id", "score", title=f"{title} ({body['took_ms']:.2f} ms)")
    for rank, hit in enumerate(body["results"], 1):
        table.add_row(str(rank), hit["video_id"], f"{hit['score']:.4f}")
    console.print(table)


def similar(
    video_id: str = typer.Argument(..., help="A video in the index."),
    k: int = typer.Option(10, "--k", min=1, max=1000, help="How many similar videos."),
    as_json: bool = typer.Option(False, "--json", help="Print the service's JSON."),
    url: str | None = URL_OPTION,
) -> None:
    """Videos most similar to VIDEO_ID (cosine of their embeddings), from the index service."""
    body = _get(url, f"/v1/similar/{quote(video_id, safe='')}", {"k": k})
    if as_json:
        print_json(body)
    else:
        _show(body, f"like {video_id}")


def candidates(
    user: str = typer.Option(..., "--user", help="User id."),
    k: int = typer.Option(100, "--k", min=1, max=1000, help="How many candidates."),
    ann_only: bool = typer.Option(False, "--ann-only", help="Only the nearest videos to the user's embedding."),
    region: str | None = typer.Option(None, "--region", help="Market region (e.g. US), with --language: its "
                                                             "trending set wins over the user's own market."),
    language: str | None = typer.Option(None, "--language", help="Market language (e.g. en), with --region."),
    as_json: bool = typer.Option(False, "--json", help="Print the service's JSON."),
    url: str | None = URL_OPTION,
) -> None:
    """Candidate videos for a user, each with its source: ANN on the user's embedding, co-watch, followed
    authors, trending (the market's set, then the global one), exploration; recent-seen and removed videos
    filtered out. A new user gets trending and exploration: pass --region and --language for their market."""
    from fyp.candidates.market import request_market

    try:  # the service checks again; checking here names the option
        request_market(region, language)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--region/--language") from exc
    params: dict[str, Any] = {"user": user, "k": k, "sources": "ann" if ann_only else "all"}
    if region is not None and language is not None:
        params |= {"region": region, "language": language}
    body = _get(url, "/v1/candidates", params)
    if as_json:
        print_json(body)
        return
    if "sources" not in body:
        _show(body, f"candidates for {user}")
        return
    table = Table("#", "video_id", "source", "score", title=f"candidates for {user} ({body['took_ms']:.2f} ms)")
    for rank, hit in enumerate(body["results"], 1):
        table.add_row(str(rank), hit["video_id"], hit["source"], f"{hit['score']:.4f}")
    console.print(table)
    per_source = Table("source", "quota", "offered", "filtered", "taken", "note", title="sources")
    for name, s in body["sources"].items():
        per_source.add_row(name, *(str(s[c]) for c in ("quota", "offered", "filtered", "taken")), s.get("error", ""))
    console.print(per_source)
    market = body.get("market") or {}
    console.print(f"[dim]trending: market {market.get('market') or 'none'} (from {market.get('from')}), "
                  f"{market.get('market_videos', 0)} market and {market.get('global_videos', 0)} global videos[/]")
    filters = body["filters"]
    console.print(f"[dim]filtered: {filters['recent_seen']} recently seen, {filters['hidden']} removed/rejected; "
                  f"timings ms {body['timings_ms']}[/]")


def reembed(
    model: str = typer.Option("latest", "--model", help="latest (the newest trained model in FYP_HOME), s3, "
                                                          "projection, or a model.pt path."),
    url: list[str] | None = typer.Option(
        None, "--url", help="Index service(s) to move to the model (repeat for replicas; default FYP_INDEX_URL, "
                            "else 127.0.0.1:8090+offset)."),
    swap: bool = typer.Option(True, "--swap/--no-swap", help="--no-swap: only write the vectors to the topic."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, max=4096, help="Videos per model call."),
    swap_timeout: float = typer.Option(600.0, "--swap-timeout", min=1, help="Seconds a service may take to swap."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Re-embed every ready video with a (re)trained model and swap the running index to it without downtime."""
    from rich.progress import MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fyp.config import load_settings
    from fyp.embeddings import ItemEncoder, ModelNotFound, load_model
    from fyp.index.reembed import reembed as run_reembed

    source = "local" if model == "latest" else model
    if source not in NAMED_MODEL_SOURCES and not Path(source).is_file():
        raise typer.BadParameter(f"{model} is not a file (or latest, s3, projection)", param_hint="--model")
    with fail_cleanly(ModelNotFound):
        encoder = ItemEncoder(load_model(source, fallback=False))
    urls = (url or [_default_url()]) if swap else []
    bar = Progress(TextColumn("re-embedding with {task.description}"), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err_console if as_json else console, transient=True)
    with fail_cleanly(RuntimeError, httpx.HTTPError), bar:
        task = bar.add_task(encoder.name, total=None)
        report = run_reembed(load_settings(), encoder, urls, batch=batch_size, swap_timeout_s=swap_timeout,
                             progress=lambda n: bar.advance(task, n))
    if as_json:
        print_json(report)
        return
    console.print(f"{report.videos} videos re-embedded with {report.model} in {report.total_s:.1f} s "
                  f"(encode {report.encode_s:.1f} s, produce {report.produce_s:.1f} s); offsets {report.offsets}")
    for target, swapped in report.swaps.items():
        if "skipped" in swapped:
            console.print(f"{target}: {swapped['skipped']}")
        else:
            console.print(f"{target}: {swapped['previous']} ({swapped['previous_size']} vectors) -> {swapped['model']}"
                          f" ({swapped['size']}); built in {swapped['build_s']:.2f} s, lock held "
                          f"{swapped['swap_ms']:.3f} ms; snapshot {swapped['snapshot'] or swapped['snapshot_error']}")
    if not report.swaps:
        console.print("[dim]no service swapped (--no-swap): start one with --model "
                      f"{report.model} --no-restore to build from the topic[/]")


def worker_user_embeddings(
    every: float = typer.Option(10.0, "--every", min=0.1, help="Seconds between passes."),
    ttl_hours: float = typer.Option(24.0, "--ttl-hours", help="Lifetime of each stored embedding."),
    model: str = typer.Option("local", "--model", help="local (trained model in FYP_HOME, else the projection), "
                                                         "auto, s3, projection, or a model.pt path."),
    index: str = typer.Option("videos", "--index", help="Follow the model this index service serves (re-encode "
                                                        "everyone after a swap); 'none': keep --model."),
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
) -> None:
    """Refresh user embeddings (Redis fyp:user_embedding:v2:*) of recently active users, until Ctrl-C: the user
    tower over their recent positives and features, with the model the index serves."""
    import logging
    from datetime import timedelta

    from workers.user_embeddings import RefreshConfig, run

    # A named model file must exist: the encoders' fallback to the projection is for a model not trained yet.
    if model not in NAMED_MODEL_SOURCES and not Path(model).is_file():
        raise typer.BadParameter(f"{model} is not a file (or one of {', '.join(NAMED_MODEL_SOURCES)})",
                                 param_hint="--model")
    logging.basicConfig(level=os.environ.get("FYP_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with fail_cleanly(ValueError):
        config = RefreshConfig(every=timedelta(seconds=every), ttl=timedelta(hours=ttl_hours), model_source=model,
                               index=None if index == "none" else index)
    run(config, once=once)


def worker_candidate_sets(
    every: float = typer.Option(300.0, "--every", min=1, help="Seconds between refreshes."),
    lookback_hours: float = typer.Option(24.0, "--lookback-hours", help="History read per refresh."),
    min_users: int = typer.Option(2, "--min-users", help="Users a co-watch pair needs."),
    once: bool = typer.Option(False, "--once", help="One refresh, then exit."),
    as_json: bool = typer.Option(False, "--json", help="Print each refresh's report as JSON."),
) -> None:
    """Co-watch from the Iceberg history into Redis, every --every seconds (follows: the follow_graph job)."""
    from dataclasses import asdict
    from datetime import timedelta

    from fyp.candidates.history_sets import HistorySetsConfig
    from workers.candidate_sets import describe, run

    with fail_cleanly(ValueError):
        config = HistorySetsConfig(lookback=timedelta(hours=lookback_hours), min_users=min_users)
    show = (lambda report: print_json(asdict(report))) if as_json else (lambda report: console.log(describe(report)))
    run(config, every=timedelta(seconds=every), once=once, on_report=show)


def bench_index(
    n: int = typer.Option(1_000_000, "--n", help="Vectors in the index."),
    dim: int = typer.Option(64, "--dim", help="Vector dimension."),
    queries: int = typer.Option(1000, "--queries", help="Measured queries (held out of the index)."),
    upserts: int = typer.Option(10_000, "--upserts", help="New vectors for the upsert rate."),
    target_recall: float = typer.Option(0.95, "--target-recall", help="Recall@10 each engine is tuned to."),
    engines: str | None = typer.Option(
        None,
        "--engines",
        help="Comma list (default all): scann, scann-soar, faiss-ivf, faiss-ivfpq, faiss-hnsw, hnswlib, exact.",
    ),
    seed: int = typer.Option(0, "--seed", help="Data seed."),
    approval_videos: int = typer.Option(
        20, "--approval-videos",
        help="Videos for approval -> searchable, through the video_embeddings job and the index service at "
             "--url (skipped when none answers; 0 = skip)."),
    url: str | None = URL_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """ScaNN vs FAISS vs hnswlib vs exact: build time, recall@10, single-thread QPS, latency, upsert rate; then
    approval -> searchable on the live stack. `--engines none` runs only the latter."""
    from fyp.index.bench import run_benchmark, summary_rows
    from fyp.index.bench_data import BenchConfig, engines_from

    if engines != "none":
        with fail_cleanly(ValueError):
            config = BenchConfig(n=n, dim=dim, queries=queries, upserts=upserts, target_recall=target_recall,
                                 engines=engines_from(engines), seed=seed)
    progress = (lambda line: err_console.print(f"[dim]{line}[/]")) if as_json else console.log
    approval = _approval_latency(url, approval_videos, progress)
    if engines == "none":
        if as_json:
            print_json({"approval_latency": approval})
        else:
            _print_approval(approval)
        return

    report = run_benchmark(config, progress=progress)
    if as_json:
        print_json({**report.as_json(), "approval_latency": approval})
        return
    table = Table(
        *("engine", "build s", f"recall@{config.k}", "QPS 1 thr", "QPS/CPU s", "p50 ms", "p95 ms", "p99 ms"),
        *("upserts/s", "vs ScaNN"),
        title=f"{n:,} x {dim} float32, {queries} queries, target recall {target_recall}",
    )
    rows = list(summary_rows(report))
    for row in rows:
        table.add_row(row[0], *row[2:])
    console.print(table)
    for row in rows:
        console.print(f"[dim]{row[0]}: {row[1]}[/]")
    console.print(
        f"[dim]{report.cpus} cpus, load average {report.load}; {report.versions}; "
        "(!) = tuning did not reach the target recall[/]"
    )
    scann = next((r for r in report.results if r.engine == "scann"), None)
    if scann is not None:
        met = scann.recall >= 0.95 and scann.qps >= 5000
        console.print(
            f"ScaNN target (recall@10 >= 0.95 at >= 5k QPS per thread): {'[green]met[/]' if met else '[red]missed[/]'}"
            f" on wall time; {scann.cpu_qps:,.0f} queries per CPU second (load {report.load[0]})"
        )
    _print_approval(approval)


def _approval_latency(url: str | None, videos: int, progress) -> dict[str, Any]:
    """Run `fyp.index.approval_latency` first (before the ANN runs load the machine), or say why not."""
    if videos <= 0:
        return {"skipped": "--approval-videos 0"}
    base = url or _default_url()
    try:
        httpx.get(f"{base}/healthz", timeout=2).raise_for_status()
    except httpx.HTTPError as exc:
        return {"skipped": f"no ready index service at {base} ({exc}); start `fyp serve index` and "
                           "`fyp submit video_embeddings`"}
    from fyp.config import load_settings
    from fyp.index.approval_latency import measure_approval_latency

    return measure_approval_latency(load_settings(), base, videos=videos, progress=progress).summary()


def _print_approval(approval: dict[str, Any]) -> None:
    if "skipped" in approval:
        console.print(f"[dim]approval -> searchable: skipped ({approval['skipped']})[/]")
        return
    table = Table("", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms",
                  title=f"approval -> searchable ({approval['videos']} videos, {approval['misses']} missed, "
                        f"load {approval['load']})")
    for name in ("searchable", "removed"):
        s = approval[name]
        table.add_row(name, str(s["samples"]), *(f"{s[c]:.0f}" for c in ("p50_ms", "p95_ms", "p99_ms", "max_ms")))
    console.print(table)
    p95 = approval["searchable"]["p95_ms"]
    met = approval["misses"] == 0 and p95 == p95 and p95 <= 5000
    verdict = "[green]met[/]" if met else "[red]missed[/]"
    console.print(f"Freshness target (searchable <= 5 s after approval, p95): {verdict}")


def register(app: typer.Typer, *, serve: typer.Typer, worker: typer.Typer, bench: typer.Typer) -> None:
    """Add to the app and to its `serve`, `bench` and `worker` groups (declared in fyp/cli.py)."""
    serve.command("index")(serve_index)
    bench.command("index")(bench_index)
    index_group = typer.Typer(help="The video index: move it to a retrained model.", no_args_is_help=True)
    index_group.command("reembed")(reembed)
    app.add_typer(index_group, name="index")
    app.command()(similar)
    app.command()(candidates)
    worker.command("user-embeddings")(worker_user_embeddings)
    worker.command("candidate-sets")(worker_candidate_sets)
