"""`fyp serve index`, `fyp similar`, `fyp candidates`, `fyp bench index`: the video ANN index and its benchmark."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import httpx
import typer
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json

__all__ = ["register"]


def _default_url() -> str:
    from fyp.index.service import default_port

    return os.environ.get("FYP_INDEX_URL") or f"http://127.0.0.1:{default_port()}"


URL_OPTION = typer.Option(None, "--url", help="Index service URL (default FYP_INDEX_URL, else 127.0.0.1:8090+offset).")


def serve_index(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int | None = typer.Option(None, "--port", help="Port (default FYP_INDEX_PORT, else 8090 + FYP_PORT_OFFSET)."),
    name: str = typer.Option("videos", "--name", help="Index name; snapshots go to index-snapshots/NAME/."),
    dim: int = typer.Option(64, "--dim", help="Vector dimension (a restored snapshot's wins)."),
    model: str | None = typer.Option(None, "--model", help="Only index vectors of this embedding model."),
    bucket: str | None = typer.Option(None, "--bucket", help="S3 bucket for snapshots (default: the media bucket)."),
    snapshot_every: float = typer.Option(300.0, "--snapshot-every", help="Seconds between snapshots; 0 = on request."),
    keep_snapshots: int = typer.Option(3, "--keep-snapshots", help="Snapshots kept in S3."),
    restore: bool = typer.Option(True, "--restore/--no-restore", help="Start from the latest snapshot."),
    replica: str | None = typer.Option(None, "--replica", help="Replica id (default host-pid); names the group."),
) -> None:
    """Serve similar-video and candidate search from a ScaNN index fed by fyp.video-embeddings.v1."""
    from fyp.config import load_settings
    from fyp.index.service import ServiceConfig, default_port, serve

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
    k: int = typer.Option(10, "--k", help="How many similar videos."),
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
    user: str = typer.Option(..., "--user", help="User id; its embedding is read from Redis by the service."),
    k: int = typer.Option(100, "--k", help="How many candidates."),
    as_json: bool = typer.Option(False, "--json", help="Print the service's JSON."),
    url: str | None = URL_OPTION,
) -> None:
    """Candidate videos for a user: nearest neighbours of the user's embedding."""
    body = _get(url, "/v1/candidates", {"user": user, "k": k})
    if as_json:
        print_json(body)
    else:
        _show(body, f"candidates for {user}")


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
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """ScaNN vs FAISS vs hnswlib vs exact: build time, recall@10, single-thread QPS, latency, upsert rate."""
    from fyp.index.bench import BenchConfig, engines_from, run_benchmark, summary_rows

    with fail_cleanly(ValueError):
        config = BenchConfig(
            n=n,
            dim=dim,
            queries=queries,
            upserts=upserts,
            target_recall=target_recall,
            engines=engines_from(engines),
            seed=seed,
        )
    progress = (lambda line: err_console.print(f"[dim]{line}[/]")) if as_json else console.log
    report = run_benchmark(config, progress=progress)
    if as_json:
        print_json(report.as_json())
        return
    table = Table(
        *("engine", "build s", f"recall@{config.k}", "QPS 1 thr", "p50 ms", "p95 ms", "p99 ms"),
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
        )


def _group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The app's command group `name`, created if no other module added it yet."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(name=name, help=help_text, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


def register(app: typer.Typer) -> None:
    _group(app, "serve", "Run a long-lived service.").command("index")(serve_index)
    _group(app, "bench", "Benchmarks.").command("index")(bench_index)
    app.command()(similar)
    app.command()(candidates)
