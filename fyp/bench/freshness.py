"""`fyp bench freshness`: event-to-Redis latency under sustained load, through the running features job.

Background traffic comes from the generator at the requested rate. Every `probe_interval` a probe Watch
event for a never-seen video id is produced on its own low-latency producer; a poller MGETs the probes'
feature keys every 2 ms and records, per probe, the time from produce to the key appearing in Redis.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from confluent_kafka import Producer

from features.engagement import video_engagement
from fyp.bench.stats import latency_summary
from fyp.config import Settings
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
from fyp.serving.cluster_reads import mget
from fyp.stack.process import StackError
from fyp.stack.submit import list_jobs
from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.traffic.producer import ProducePlan, produce
from schemas.registry import default_registry
from schemas.topics import ENGAGEMENT

__all__ = ["FreshnessResult", "run_freshness"]

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


def run_freshness(
    settings: Settings, *, rate: float, duration_s: float, probe_interval_s: float = 0.05,
    users: int = 100_000, videos: int = 200_000, settle_s: float = 10.0,
) -> FreshnessResult:
    # Without the job nothing reaches Redis: every probe would wait out `settle_s` and come back missing.
    if not any(job.name == FEATURES_PIPELINE and job.state == "RUNNING" for job in list_jobs(settings)):
        raise StackError(f"no {FEATURES_PIPELINE} job is running, so no event would reach Redis; "
                         "submit it first: fyp submit engagement_features")
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
