"""`fyp bench …`: long measurements; each prints p50/p95/p99 or rates, and one JSON object with --json."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.table import Table

from fyp.commands.output import console, fail_cleanly, print_json
from fyp.commands.training import bench_command as training_set_bench
from fyp.config import load_settings
from fyp.stack.process import StackError

__all__ = ["register"]


def _show(title: str, data: dict) -> None:
    table = Table("metric", "value", title=title)
    for key, value in data.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        table.add_row(key, f"{value:,}" if number else str(value))
    console.print(table)


def freshness(
    rate: float = typer.Option(None, "--rate", min=1, help="Background events/s (one rate; default 20000)."),
    rates: str = typer.Option(None, "--rates", help="Several rates in turn on the same job, comma-separated, e.g. "
                              "5000,10000,20000,40000; before each, the job drains what earlier load left."),
    duration: float = typer.Option(60, "--duration", min=1, help="Seconds of load (per rate)."),
    probe_interval: float = typer.Option(0.05, "--probe-interval", min=0.001, help="Seconds between latency probes."),
    pause: float = typer.Option(5, "--pause", min=0, help="With --rates: seconds of no load after the drain, "
                                "before each rate."),
    drain_timeout: float = typer.Option(300, "--drain-timeout", min=1, help="With --rates: give up waiting for "
                                        "the drain after this many seconds (the rate is then run anyway, and its "
                                        "drain_before_s is null)."),
    pause_redis_snapshots: bool = typer.Option(
        False, "--pause-redis-snapshots", help="No Redis RDB snapshot during the runs (restored after): a snapshot "
        "of a big dataset takes seconds of CPU and shows in the tail. With --rates, each rate counts the snapshots "
        "and the job's checkpoints during its run either way."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Event-to-Redis latency (p50/p95/p99) through the running engagement_features job under load."""
    from fyp.bench.freshness import flatten, run_freshness
    from fyp.bench.throughput import redis_snapshots_paused
    from fyp.traffic.producer import ProducerError

    if rates is not None:
        if rate is not None:
            raise typer.BadParameter("give --rate or --rates, not both", param_hint="--rates")
        with fail_cleanly(StackError), redis_snapshots_paused(load_settings(), pause_redis_snapshots):
            _freshness_rates(_parse_rates(rates), duration=duration, probe_interval=probe_interval, pause=pause,
                             drain_timeout=drain_timeout, as_json=as_json)
        return
    rate = rate or 20_000
    status = console.status(f"{rate:,.0f} events/s for {duration:.0f} s, probing …")
    settings = load_settings()
    with fail_cleanly(StackError, ProducerError), status, redis_snapshots_paused(settings, pause_redis_snapshots):
        result = run_freshness(settings, rate=rate, duration_s=duration, probe_interval_s=probe_interval)
    data = flatten(result)
    print_json(data) if as_json else _show("freshness: produce -> Redis", data)


def _parse_rates(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"comma-separated events/s, e.g. 5000,10000; got {text!r}",
                                 param_hint="--rates") from None
    if not values or min(values) < 1:
        raise typer.BadParameter("at least one rate, each >= 1 event/s", param_hint="--rates")
    return values


def _freshness_rates(rates: list[float], *, duration: float, probe_interval: float, pause: float,
                     drain_timeout: float, as_json: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fyp.bench.freshness import run_freshness_rates
    from fyp.traffic.producer import ProducerError

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True, disable=as_json)
    with fail_cleanly(StackError, ProducerError), bar:
        task = bar.add_task("freshness", total=len(rates))

        results = run_freshness_rates(load_settings(), rates, duration_s=duration, probe_interval_s=probe_interval,
                                      pause_s=pause, drain_timeout_s=drain_timeout,
                                      on_progress=lambda done, text: bar.update(task, description=text, completed=done))
    data = {"duration_s": duration, "pause_s": pause, "probe_interval_s": probe_interval, "rates": results}
    if as_json:
        print_json(data)
        return
    columns = ("rate_requested", "rate_held", "p50_ms", "p95_ms", "p99_ms", "probes", "missing", "drain_before_s",
               "checkpoints", "redis_snapshots")
    table = Table(*columns, "load 1m start -> end",
                  title=f"freshness: produce -> Redis, {duration:g} s per rate, {pause:g} s pause after each drain")
    for r in results:
        table.add_row(*("-" if r[c] is None else f"{r[c]:,}" for c in columns),
                      f"{r['load_1m_start']} -> {r['load_1m_end']}")
    console.print(table)


def throughput(
    events: int = typer.Option(1_000_000, "--events", min=1, help="Events to preload and process."),
    users: int = typer.Option(100_000, "--users", min=1, help="Distinct viewers in the generated traffic."),
    videos: int = typer.Option(200_000, "--videos", min=1, help="Distinct videos in the generated traffic."),
    peers: bool = typer.Option(True, "--peers/--no-peers", help="Also run the job with video_engagement only and "
                               "every Python peer (fyp/bench/peers/runner.py PEERS)."),
    seed: int = typer.Option(11, "--seed", help="Traffic generator seed."),
    conf: list[str] = typer.Option([], "--conf", "-D", help="Flink configuration key=value for the job's runs "
                                   "(repeatable), e.g. -D state.backend.type=hashmap. The job's own settings "
                                   "(jobs/engagement_features.py JOB_CONFIG) take precedence."),
    repeat: int = typer.Option(1, "--repeat", min=1, help="Rounds of every contestant; figures are medians."),
    warmup: bool = typer.Option(True, "--warmup/--no-warmup", help="Run the job once, unmeasured, before the "
                                "rounds: a TaskManager's first runs of it are slower while the JIT compiles."),
    pause_redis_snapshots: bool = typer.Option(
        False, "--pause-redis-snapshots", help="No Redis RDB snapshot during the runs (restored after): each one "
        "takes seconds of CPU with a big dataset and slows whichever round it overlaps."),
    per_set_sql: bool = typer.Option(
        False, "--per-set-sql", help="Each round also runs the all-sets job with every set through its own SQL "
        "GROUP BY (no key-family operator): the design before, in the same rounds."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Sustained events/s of the features job over N preloaded events, against Python peers in the same run."""
    from fyp.bench.throughput import bench_topic, compare, preload, redis_snapshots_paused
    from fyp.stack.submit import parse_properties

    try:
        properties = parse_properties(conf)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--conf") from None
    settings = load_settings()
    with fail_cleanly(StackError):
        topic = bench_topic(settings)
        with console.status(f"preloading {events:,} events into {topic.name} …"):
            produce_rate = preload(settings, topic, events, users=users, videos=videos, seed=seed)
        with console.status("running …") as status, redis_snapshots_paused(settings, pause_redis_snapshots):
            results = compare(settings, topic, events, repeat=repeat, peers=peers, warmup=warmup,
                              properties=properties, per_set_sql=per_set_sql, status=status.update)
        data: dict = {"events": events, "topic": topic.name, "produce_rate": round(produce_rate, 1),
                      "flink_conf": properties, "redis_snapshots_paused": pause_redis_snapshots, **results}
    print_json(data) if as_json else _show_throughput(data)


def _show_throughput(data: dict) -> None:
    """Medians per contestant, the ratios, then every round with its load average."""
    def cell(value: object) -> str:
        return "-" if value is None else f"{value:,}" if isinstance(value, int | float) else str(value)

    metrics = ("events_per_s", "events_per_cpu_s", "first_to_last_s", "submit_to_last_s", "cpu_seconds")
    headers = ("events/s", "events/CPU-s", "first→last s", "submit→last s", "CPU s")
    medians = Table("contestant", *headers, title=f"throughput: medians of {data['repeat']} round(s), "
                    f"{data['events']:,} events")
    for name, figures in data["medians"].items():
        medians.add_row(name, *(cell(figures[m]) for m in metrics))
    console.print(medians)
    ratios = {k: v for k, v in data.items() if k.startswith(("flink_vs_", "families_vs_"))}
    _show("ratios (video only / peer; families / per-set SQL) and run", ratios | {
        k: data[k] for k in ("warmup_events_per_s", "produce_rate", "topic", "flink_conf", "redis_snapshots_paused",
                             "redis_snapshots", "jobs_running_beside") if k in data})
    rounds = Table("round", "contestant", *headers[:4], "load 1m",
                   title="every round (load: 1-min average, start → end)")
    for r in data["rounds"]:
        for name in data["medians"]:
            rounds.add_row(str(r["round"]), name, *(cell(r[name].get(m)) for m in metrics[:4]),
                           f"{r['load_1m_start']}→{r['load_1m_end']}")
    console.print(rounds)
    for kind, text in data["clocks"].items():
        console.print(f"[dim]{kind}: {text}[/dim]")


def cost(
    idle_seconds: float = typer.Option(30, "--idle-seconds", min=1, help="Seconds with nothing produced."),
    rate: float = typer.Option(5_000, "--rate", min=1, help="Events/s of the sustained load."),
    duration: float = typer.Option(60, "--duration", min=1, help="Seconds of measured load."),
    warmup: float = typer.Option(10, "--warmup-seconds", min=0, help="Seconds of load before, unmeasured."),
    drain_timeout: float = typer.Option(300, "--drain-timeout", min=1,
                                        help="Give up waiting for the job to catch up after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """TaskManager CPU of the running jobs: idle (no events arriving) and per 1,000 events at a sustained rate."""
    from fyp.bench.cost import run_cost
    from fyp.traffic.producer import ProducerError

    status = console.status("measuring …")
    with fail_cleanly(StackError, ProducerError), status:
        result = run_cost(load_settings(), idle_s=idle_seconds, rate=rate, duration_s=duration, warmup_s=warmup,
                          drain_timeout_s=drain_timeout, on_progress=status.update)
    data = dataclasses.asdict(result)
    print_json(data) if as_json else _show("cost: TaskManager CPU, idle and under load", data)


def upload(
    clips: str = typer.Option(None, "--clips", help="Generated sources, SECONDS:WxH comma-separated "
                              "(default 4:640x360,4:1280x720,8:720x1280,8:1920x1080,15:854x480)."),
    repeat: int = typer.Option(1, "--repeat", min=1, help="Upload every clip this many times."),
    api: str = typer.Option(None, "--api", envvar="FYP_UPLOAD_API",
                            help="A running upload API; default: start one for the run."),
    workers: bool = typer.Option(True, "--workers/--no-workers",
                                 help="Start a transcoder and a moderator (--no-workers: use running ones)."),
    pipeline_run: bool = typer.Option(True, "--pipeline/--no-pipeline", help="Run the uploads through the stack."),
    ladder: bool = typer.Option(True, "--ladder/--no-ladder", help="Also run the ladder comparison."),
    seconds: float = typer.Option(10, "--seconds", min=1, help="Length of the ladder comparison's 1080p30 source."),
    source_codec: str = typer.Option("h264", "--source-codec", help="Ladder source: h264, or hevc (as phones record)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Upload-complete -> verdict / first playable rendition / full ladder through the running stack (p50/p95 per
    second of source), then the ladder: one decode feeding every rung vs one ffmpeg run per rendition."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fyp.bench.upload import DEFAULT_CLIPS, parse_clips, run_upload_bench
    from fyp.media.bench import run_ladder_benchmark

    try:
        planned = parse_clips(clips or DEFAULT_CLIPS) if pipeline_run else []
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--clips") from None
    if source_codec not in ("h264", "hevc"):
        raise typer.BadParameter("h264 or hevc", param_hint="--source-codec")
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True, disable=as_json)
    with fail_cleanly(StackError, RuntimeError), bar:
        task = bar.add_task("upload pipeline", total=len(planned) * repeat + int(ladder))
        pipeline: dict = {"samples": []}
        if planned:
            pipeline = run_upload_bench(
                load_settings(), planned, repeat=repeat, api=api, start_workers=workers,
                on_step=lambda text: bar.update(task, description=text),
                on_video=lambda _: bar.advance(task),
            )
        if ladder:
            bar.update(task, description=f"ladder: encoding a {seconds:g} s 1080p {source_codec} source several ways …")
            pipeline["ladder"] = run_ladder_benchmark(source_seconds=seconds, source_codec=source_codec)
            bar.advance(task)
    if as_json:
        print_json(pipeline)
        return
    if not planned:
        _show("upload: transcode ladder", pipeline["ladder"])
        return
    samples = Table("clip", "status", "renditions", "first playable ms", "full ladder ms", "verdict ms",
                    "ready ms", "stage 1 CPU s", "stage 2 CPU s", "transcoder CPU s", "moderator CPU s",
                    title="upload pipeline, per video (from upload-complete)")
    for s in pipeline["samples"]:
        samples.add_row(s["clip"], s["status"], str(len(s.get("renditions", []))),
                        *(f"{s[k]:,}" if s.get(k) is not None else "-" for k in
                          ("first_playable_ms", "full_ladder_ms", "verdict_ms", "ready_ms", "playable_stage_cpu_s",
                           "full_stage_cpu_s", "transcoder_cpu_s", "moderator_cpu_s")))
    console.print(samples)
    _show("upload pipeline: p50/p95", {k: v for k, v in pipeline.items() if k not in ("samples", "ladder")})
    if ladder:
        _show("upload: transcode ladder", pipeline["ladder"])


def lake(
    events: int = typer.Option(1_000_000, "--events", min=1, help="Events in the burst, produced as fast as possible."),
    users: int = typer.Option(100_000, "--users", min=1, help="Distinct viewers in the generated traffic."),
    videos: int = typer.Option(200_000, "--videos", min=1, help="Distinct videos in the generated traffic."),
    probe_interval: float = typer.Option(0.5, "--probe-interval", min=0.01,
                                         help="Seconds between commit-latency probes."),
    idle_seconds: float = typer.Option(30, "--idle-seconds", min=0,
                                       help="Probe this long before the burst (idle latency)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """The history and features jobs together on a burst (combined events/s), and produce -> `fyp sql` latency."""
    import os

    from fyp.bench.lake import run_lake_bench

    with fail_cleanly(StackError), console.status(f"{events:,} events through both jobs, probing commits …"):
        result = run_lake_bench(load_settings(), events=events, users=users, videos=videos,
                                probe_interval_s=probe_interval, idle_s=idle_seconds)
    data = {k: v for k, v in dataclasses.asdict(result).items() if not k.startswith("commit_latency")}
    data |= {f"commit_idle_{k}": v for k, v in result.commit_latency_idle.items()}
    data |= {f"commit_burst_{k}": v for k, v in result.commit_latency.items()}
    data["load_average_1m"] = round(os.getloadavg()[0], 2)
    print_json(data) if as_json else _show("lake: history + features jobs, commit latency", data)


def chaos(
    events: int = typer.Option(200_000, "--events", min=1,
                               help="At most this many events (production ends earlier when the faults are over)."),
    rate: float = typer.Option(1_000, "--rate", min=1, help="Events/s while the faults happen."),
    kills: int = typer.Option(2, "--kills", min=1, help="TaskManager SIGKILLs; a broker restart follows the first."),
    every: float = typer.Option(20, "--every", min=1,
                                help="Seconds between faults (each waits for the recovery before)."),
    verify_sample: int = typer.Option(50, "--verify-sample", min=1,
                                      help="Videos and users checked by fyp verify after."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Kill the TaskManager (kill -9) and restart Kafka while producing; then count the history and verify Redis."""
    from fyp.bench.chaos import run_chaos

    kinds = ["kill_taskmanager", "restart_kafka"] + ["kill_taskmanager"] * (kills - 1)
    schedule = [(every * (i + 1), kind) for i, kind in enumerate(kinds)]
    settings = load_settings()
    with fail_cleanly(StackError), console.status(f"{events:,} events at {rate:,.0f}/s with faults …") as status:
        result = run_chaos(settings, events=events, rate=rate, schedule=schedule, verify_sample=verify_sample,
                           on_progress=lambda message: status.update(f"{message} …"))
    import os

    data = dataclasses.asdict(result) | {"exactly_once": result.exactly_once,
                                         "load_average_1m": round(os.getloadavg()[0], 2)}
    if as_json:
        print_json(data)
    else:
        _show("chaos: history and features under faults", {k: v for k, v in data.items() if k != "disruptions"})
        faults = Table("fault", "at s", "service back s", "jobs running s", "job restarts", title="recovery")
        for d in result.disruptions:
            faults.add_row(d.kind, f"{d.at_s:.1f}", str(d.service_back_s), str(d.jobs_running_s), str(d.job_restarts))
        console.print(faults)
    # A fault the jobs did not get over within the bench's timeout (180 s) fails the run like a lost event.
    unrecovered = any(d.jobs_running_s is None for d in result.disruptions)
    if not result.exactly_once or set(result.verify) - {"match"} or unrecovered:
        raise typer.Exit(1)


def serving(
    requests: int = typer.Option(1_000, "--requests", min=20, help="Ranking requests (and single reads) for fyp."),
    feast_requests: int = typer.Option(200, "--feast-requests", min=20,
                                       help="Of those, how many Feast also serves (each takes it 100s of ms)."),
    candidates: int = typer.Option(500, "--candidates", min=1, help="Candidate videos per ranking request."),
    users: int = typer.Option(1_000, "--users", min=1, help="Users written to both stores."),
    videos: int = typer.Option(20_000, "--videos", min=1, help="Videos written to both stores."),
    db: int = typer.Option(15, "--db", min=1, help="Redis database for both stores (flushed; never the job's 0)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    cluster: bool = typer.Option(False, "--cluster", help="Redis Cluster beside a single Redis instead of Feast: "
                                 "this home's store and a scratch one of the other kind, started for the run."),
    cluster_port: int = typer.Option(0, "--cluster-port", help="With --cluster: the scratch store's first port "
                                     "(default: this home's Redis port + 100; a cluster takes 6 ports)."),
) -> None:
    """Read latency of 1 user + N candidates and of one entity: FeatureClient vs Feast's Redis online store
    (or, with --cluster, FeatureClient on a Redis Cluster vs on a single Redis)."""
    import os

    import redis
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fyp.bench.serving import TARGET_P99_MS, TARGET_RATIO, run_serving

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True, disable=as_json)
    if cluster:
        _serving_cluster(bar, requests=requests, candidates=candidates, users=users, videos=videos, db=db,
                         port=cluster_port, as_json=as_json)
        return
    with fail_cleanly(StackError, ValueError, RuntimeError, redis.RedisError), bar:
        task = bar.add_task("reads (fyp and Feast, alternating)", total=2 * requests)
        result = run_serving(load_settings(), db=db, users=users, videos=videos, candidates=candidates,
                             requests=requests, feast_requests=feast_requests,
                             progress=lambda n: bar.advance(task, n))
    data = dataclasses.asdict(result) | {
        "target_p99_ms": TARGET_P99_MS, "target_ratio": TARGET_RATIO,
        "load_average_1m": round(os.getloadavg()[0], 2)}
    if as_json:
        print_json(data)
        return
    _latency_table(data, f"serving: 1 user + {candidates} videos, and one user (targets: p99 <= {TARGET_P99_MS} ms, "
                   f">= {TARGET_RATIO:g}x Feast)",
                   (("request", f"1 user + {candidates} videos"), ("single", "one user")), ("fyp", "feast"))
    _show("Feast latency / fyp latency", result.ratios | {"load_average_1m": data["load_average_1m"]})


def _serving_cluster(bar, *, requests: int, candidates: int, users: int, videos: int, db: int, port: int,
                     as_json: bool) -> None:
    import os

    import redis

    from fyp.bench.serving_cluster import TARGET_REQUEST_P99_MS, TARGET_SINGLE_P99_MS, run_serving_cluster

    settings = load_settings()
    with fail_cleanly(StackError, ValueError, RuntimeError, redis.RedisError), bar:
        task = bar.add_task("reads (single Redis and Redis Cluster, alternating)", total=2 * requests)
        result = run_serving_cluster(settings, port=port or settings.redis_port + 100, db=db, users=users,
                                     videos=videos, candidates=candidates, requests=requests,
                                     progress=lambda n: bar.advance(task, n))
    data = dataclasses.asdict(result) | {
        "target_request_p99_ms": TARGET_REQUEST_P99_MS, "target_single_entity_p99_ms": TARGET_SINGLE_P99_MS,
        "load_average_1m": round(os.getloadavg()[0], 2)}
    if as_json:
        print_json(data)
        return
    _latency_table(data, f"serving on Redis Cluster ({result.cluster_nodes} nodes) and a single Redis (cluster "
                   f"targets: p99 <= {TARGET_REQUEST_P99_MS} ms, one user <= {TARGET_SINGLE_P99_MS} ms)",
                   (("request", f"1 user + {candidates} videos"), ("single_entity", "one user")), ("single", "cluster"))
    console.print(f"load average (1 min): {data['load_average_1m']}")


def _latency_table(data: dict, title: str, reads: tuple[tuple[str, str], ...], clients: tuple[str, ...]) -> None:
    """One row per (read, client) of `data[read][client]`'s latency summary."""
    table = Table("read", "client", "samples", "p50 ms", "p95 ms", "p99 ms", "reads/s", title=title)
    for read, label in reads:
        for client in clients:
            s = data[read][client]
            table.add_row(label, client, str(s["samples"]), *(f"{s[k]:,}" for k in
                                                             ("p50_ms", "p95_ms", "p99_ms", "requests_per_s")))
    console.print(table)


def limits(
    rounds: int = typer.Option(200, "--rounds", min=1, help="Timed calls per case."),
    unbounded_rounds: int = typer.Option(3, "--unbounded-rounds", min=1,
                                         help="Timed calls of unbounded VADER per comment (slow)."),
    uploads: bool = typer.Option(False, "--uploads", help="The upload side instead: API, orchestration, workers' "
                                 "checks and the embedding text, CPU ms per record (loads the text model)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Per-event cost of the worst events the field limits admit: the reference decoder and comment sentiment,
    beside unbounded VADER on the same comments (no services needed)."""
    import os

    from fyp.bench.limits import run_limits

    if uploads:
        from fyp.bench.upload_limits import run_upload_limits

        if as_json:  # stdout holds the JSON alone
            print_json({"cpu_ms": run_upload_limits(), "load_average_1m": round(os.getloadavg()[0], 2)})
            return
        with console.status("timing") as status:
            costs = run_upload_limits(progress=lambda case: status.update(f"timing {case}"))
        _show(f"upload side: CPU ms per record at the limits (load average {os.getloadavg()[0]:.2f})", costs)
        return

    status = console.status("timing")
    if as_json:  # stdout holds the JSON alone
        cases = run_limits(rounds=rounds, unbounded_rounds=unbounded_rounds)
    else:
        with status:
            cases = run_limits(rounds=rounds, unbounded_rounds=unbounded_rounds,
                               progress=lambda name: status.update(f"timing {name}"))
    load = round(os.getloadavg()[0], 2)
    if as_json:
        print_json({"load_average_1m": load, "cases": [
            {"name": c.name, "kind": c.kind, **c.latency, "per_s": c.per_s} for c in cases]})
        return
    table = Table("case", "function", "calls", "p50 ms", "p95 ms", "p99 ms", "max ms", "per s (p50)",
                  title=f"per-event cost at the field limits (load average {load})")
    for c in cases:
        table.add_row(c.name, c.kind, str(c.latency["samples"]),
                      *(f"{c.latency[k]:,}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")), f"{c.per_s:,}")
    console.print(table)


def near_duplicates(
    sources: int = typer.Option(28, "--sources", min=2, help="Source clips indexed (each also edited 12 ways)."),
    unrelated: int = typer.Option(21, "--unrelated", min=0, help="Clips never indexed, for the false-match rate."),
    duration: float = typer.Option(4.0, "--duration", min=1, help="Seconds per clip."),
    seed: int = typer.Option(0, "--seed", help="First source's seed; clips are a function of their seed."),
    padding: int = typer.Option(0, "--padding", min=0, help="Random 8-frame signatures added to the index, to time "
                                "queries at a realistic index size (they never match)."),
    clips_dir: Path | None = typer.Option(None, "--clips-dir", help="Keep (and reuse) the generated clips here."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Detection rate per edit (crops, mirror, flip, rotation, re-encode, speed) of the PDQ near-duplicate index,
    its false-match rate, and hashing/query CPU time per clip (ffmpeg only; no services needed)."""
    import os
    import subprocess

    from fyp.bench.near_duplicates import run_near_duplicates
    from fyp.moderation.frames import FrameExtractionError

    # ffmpeg prints its own error on stderr; these end the run with one line instead of a traceback.
    failures = fail_cleanly(subprocess.SubprocessError, FrameExtractionError, OSError)
    with failures, console.status("generating clips …") as status:
        result = run_near_duplicates(sources=sources, unrelated=unrelated, duration_s=duration, seed=seed,
                                     padding=padding, clips_dir=clips_dir, progress=None if as_json else status.update)
    data = dataclasses.asdict(result) | {"load_average_1m": round(os.getloadavg()[0], 2)}
    if as_json:
        print_json(data)
        return
    _show("detected: share of edited copies matched to their source", result.detection)
    _show("false matches, wrong sources, CPU time per clip (ms)", {
        "false_match_rate": result.false_match_rate, "false_matches": ", ".join(result.false_matches) or "-",
        "wrong_source": result.wrong_source,
        **{f"hashing_{k}": v for k, v in result.hashing.items()}, **{f"query_{k}": v for k, v in result.query.items()},
        "load_average_1m": data["load_average_1m"]})


def experiment_report(
    users: int = typer.Option(200_000, "--users", min=2, help="Users (all in the experiment)."),
    events_per_user: int = typer.Option(25, "--events-per-user", min=1, help="Rows per user, on average."),
    days: int = typer.Option(3, "--days", min=1, help="Days the rows spread over (one partition per day and type)."),
    appends: int = typer.Option(8, "--appends", min=1, help="Commits the history is written in (files per partition)."),
    rounds: int = typer.Option(3, "--rounds", min=1, help="Rounds of every mode, modes alternating."),
    warehouse: Path = typer.Option(None, "--warehouse", help="Where the local table goes (default: a temporary "
                                   "directory, removed afterwards); must not exist."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Rows/s and peak memory of `fyp experiment report`'s scan on a generated local Iceberg history, against
    pyiceberg's batch reader and a whole-table load (fyp/bench/report_scan.py; no services needed)."""
    import shutil
    import tempfile

    from fyp.bench.report_scan import run_bench

    scratch = None if warehouse else Path(tempfile.mkdtemp(prefix="fyp-report-bench-"))
    target = warehouse or scratch / "warehouse"
    with fail_cleanly(OSError, ValueError), console.status(f"writing {users * events_per_user:,} rows, then "
                                                            f"{rounds} rounds …"):
        if target.exists():
            raise ValueError(f"--warehouse {target} exists: give a new directory")
        try:
            data = run_bench(target, users=users, events_per_user=events_per_user, days=days, appends=appends,
                             rounds=rounds)
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
    if as_json:
        print_json(data)
        return
    table = Table("round", "mode", "wall s", "rows/s", "RSS before MiB", "peak RSS MiB", "peak - before MiB", "load 1m",
                  title=f"experiment report scan: {data['rows']:,} rows, {data['users']:,} users, {data['files']} "
                        "files")
    for r in data["rounds"]:
        table.add_row(str(r["round"]), r["mode"], f"{r['wall_s']:.2f}", f"{r['rows_per_s']:,}",
                      f"{r['rss_before_mib']:,}", f"{r['peak_rss_mib']:,}", f"{r['peak_over_before_mib']:,}",
                      f"{r['load_1m']:.1f}")
    console.print(table)


def register(bench: typer.Typer) -> None:
    """Add the benchmarks to the `bench` group (declared in fyp/cli.py; fyp/commands/index.py adds `index`)."""
    for command in (freshness, throughput, cost, upload, lake, chaos, serving, limits):
        bench.command()(command)
    bench.command("near-duplicates")(near_duplicates)
    bench.command("experiment-report")(experiment_report)
    bench.command("training-set")(training_set_bench)
