"""`fyp bench freshness`: event-to-Redis latency under sustained load, through the running features job.

Background traffic comes from the generator at the requested rate. Every `probe_interval` a probe Watch
event for a never-seen video id is produced on its own low-latency producer; a poller MGETs the probes'
feature keys every 2 ms and records, per probe, the time from produce to the key appearing in Redis.

`run_freshness_rates` measures several rates in turn on the same job. Before each rate it waits until the job
has drained what earlier load left in Kafka (`drain`: a marker event on every partition of the topic has
reached Redis), then pauses `pause_s`, so that one rate's backlog does not count against the next. Each rate's
record also counts what can stall the job for a moment and so shows in the tail: the job's checkpoints completed,
and the Redis snapshots started, during its run.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta

import httpx
from confluent_kafka import Producer

from features.engagement import video_engagement
from fyp.bench.proc_cpu import load_average_1m
from fyp.bench.stats import latency_summary
from fyp.bench.throughput import redis_forks
from fyp.config import Settings
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
from fyp.serving.cluster_reads import mget
from fyp.stack.process import StackError
from fyp.stack.submit import list_jobs
from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.traffic.producer import ProducePlan, produce
from schemas.registry import default_registry
from schemas.topics import ENGAGEMENT

__all__ = ["FreshnessResult", "completed_checkpoints", "drain", "flatten", "require_features_job", "run_freshness",
           "run_freshness_rates"]

FEATURES_PIPELINE = ENGAGEMENT_FEATURES_JOB.pipeline_name


@dataclass(frozen=True, kw_only=True)
class FreshnessResult:
    rate_requested: float
    rate_held: float
    produced: int
    probes: int
    missing: int
    latency: dict[str, float]


def _probe_payload(video_id: str, now_ms: int) -> bytes:
    return default_registry().encode("Watch", {
        "event_id": str(uuid.uuid4()), "event_time": now_ms, "user_id": "u-probe", "video_id": video_id,
        "author_id": "a-probe", "sound_id": None, "region": "US", "language": "en", "session_id": "probe",
        "hashtags": [], "watch_ms": 1000, "video_duration_ms": 10_000,
    })


def require_features_job(settings: Settings) -> None:
    """Raise StackError, saying what to submit, unless the engagement_features job is running."""
    # Without the job nothing reaches Redis: every probe would wait out its settle time and come back missing.
    if not any(job.name == FEATURES_PIPELINE and job.state == "RUNNING" for job in list_jobs(settings)):
        raise StackError(f"no {FEATURES_PIPELINE} job is running, so no event would reach Redis; "
                         "submit it first: fyp submit engagement_features")


def completed_checkpoints(settings: Settings) -> int:
    """Checkpoints the running features job has completed (Flink REST `/jobs/<id>/checkpoints`), 0 without one."""
    total = 0
    for job in list_jobs(settings):
        if job.name == FEATURES_PIPELINE and job.state == "RUNNING":
            response = httpx.get(f"{settings.flink_rest_url}/jobs/{job.job_id}/checkpoints", timeout=5)
            response.raise_for_status()
            total += int(response.json()["counts"]["completed"])
    return total


def drain(settings: Settings, *, timeout_s: float = 300.0) -> float | None:
    """Seconds until the features job has caught up with the engagement topic, or None after `timeout_s`.

    One marker Watch event (a never-seen video) goes to every partition; the job reads a partition in order,
    so once every marker's key is in Redis, everything produced before them has been read and aggregated."""
    run = uuid.uuid4().hex[:8]
    client = settings.redis_client()
    producer = Producer({**settings.kafka_producer_config(), "linger.ms": 0, "log_level": 0})
    started = time.perf_counter()
    markers = {}
    for partition in range(ENGAGEMENT.partitions):
        video = f"drain-{run}-{partition}"
        markers[video_engagement.v1.key_prefix + video] = video
        producer.produce(ENGAGEMENT.name, key=b"u-probe", partition=partition,
                         value=_probe_payload(video, int(time.time() * 1000)), timestamp=int(time.time() * 1000))
    producer.flush(10)
    pending = list(markers)
    while pending:
        if time.perf_counter() - started > timeout_s:
            return None
        pending = [key for key, value in zip(pending, mget(client, pending), strict=True) if not value]
        time.sleep(0.05)
    return round(time.perf_counter() - started, 2)


def run_freshness_rates(
    settings: Settings, rates: Sequence[float], *, duration_s: float, probe_interval_s: float = 0.05,
    pause_s: float = 5.0, drain_timeout_s: float = 300.0, users: int = 100_000, videos: int = 200_000,
    on_progress: Callable[[int, str], None] = lambda _done, _text: None,
) -> list[dict]:
    """`run_freshness` at each of `rates` in turn on the running job; before each, `drain` (up to
    `drain_timeout_s`) and then `pause_s` seconds of no load. One dict per rate: the result's fields with the
    latency summary flattened, `drain_before_s` (None: not drained in time, so this rate met a backlog), and
    the 1-minute load average at its start and end, and `checkpoints` and `redis_snapshots`: how many of the job's
    checkpoints completed, and how many Redis snapshots started, during the run. on_progress(rates done, what
    happens now)."""
    require_features_job(settings)
    results = []
    for rate in rates:
        done = len(results)
        on_progress(done, f"{rate:,.0f} events/s: waiting for the job to drain earlier load …")
        drained = drain(settings, timeout_s=drain_timeout_s)
        on_progress(done, f"{rate:,.0f} events/s: {pause_s:g} s pause …")
        time.sleep(pause_s)
        on_progress(done, f"{rate:,.0f} events/s for {duration_s:g} s, probing …")
        load_start, checkpoints, forks = load_average_1m(), completed_checkpoints(settings), redis_forks(settings)
        result = run_freshness(settings, rate=rate, duration_s=duration_s, probe_interval_s=probe_interval_s,
                               users=users, videos=videos)
        results.append(flatten(result) | {"drain_before_s": drained, "load_1m_start": load_start,
                                          "load_1m_end": load_average_1m(),
                                          "checkpoints": completed_checkpoints(settings) - checkpoints,
                                          "redis_snapshots": redis_forks(settings) - forks})
    return results


def flatten(result: FreshnessResult) -> dict:
    """The result as one flat dict: its fields, then p50_ms/p95_ms/p99_ms/max_ms/samples of the latency."""
    return {k: v for k, v in asdict(result).items() if k != "latency"} | result.latency


def run_freshness(
    settings: Settings, *, rate: float, duration_s: float, probe_interval_s: float = 0.05,
    users: int = 100_000, videos: int = 200_000, settle_s: float = 10.0,
) -> FreshnessResult:
    require_features_job(settings)
    run = uuid.uuid4().hex[:8]
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()
    client = settings.redis_client()
    client.ping()
    prefix = video_engagement.v1.key_prefix

    def poll() -> None:
        while not stop.is_set() or sent_at:
            with lock:
                pending = list(sent_at)
            if pending:
                values = mget(client, [prefix + v for v in pending])  # a Redis Cluster too
                now = time.perf_counter()
                with lock:
                    for video, value in zip(pending, values, strict=True):
                        if value:
                            latencies.append((now - sent_at.pop(video)) * 1000)
            time.sleep(0.002)

    probes = Producer({**settings.kafka_producer_config(), "linger.ms": 0, "log_level": 0})

    def probe() -> None:
        i = 0
        while not stop.is_set():
            video = f"probe-{run}-{i}"
            payload = _probe_payload(video, int(time.time() * 1000))
            with lock:
                sent_at[video] = time.perf_counter()
            probes.produce(ENGAGEMENT.name, key=b"u-probe", value=payload, timestamp=int(time.time() * 1000))
            probes.poll(0)
            i += 1
            time.sleep(probe_interval_s)
        probes.flush(10)

    poller, prober = threading.Thread(target=poll, daemon=True), threading.Thread(target=probe, daemon=True)
    poller.start()
    prober.start()
    report = produce(TrafficGenerator(TrafficConfig(users=users, videos=videos), int(time.time())),
                     ProducePlan(rate=rate, duration=timedelta(seconds=duration_s)),
                     client_config=settings.kafka_client_config())
    stop.set()
    prober.join()
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline and sent_at:
        time.sleep(0.05)
    with lock:
        missing = len(sent_at)
        sent_at.clear()
    poller.join(timeout=2)
    return FreshnessResult(rate_requested=rate, rate_held=round(report.rate, 1), produced=report.produced,
                           probes=len(latencies) + missing, missing=missing, latency=latency_summary(latencies))
