"""`fyp bench throughput`: sustained events/s of the features job, and of two Python peers, on the same events.

N generated events go to a fresh topic. The Flink features job then runs bounded over exactly those offsets
(it finishes when done); the rate is N over the time from its source starting to the job finishing, so job
submission is excluded. Each peer then consumes the same topic from the start (see fyp/bench/peers).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fyp.bench.peers.redis_writer import redis_client
from fyp.config import Settings
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
from fyp.stack.process import StackError
from fyp.stack.submit import submit_job
from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.traffic.producer import ProducePlan, produce
from schemas.topics import ENGAGEMENT, Topic

__all__ = ["FlinkRun", "bench_topic", "compare", "preload", "redis_snapshots_paused", "run_flink_bounded"]


@dataclass(frozen=True, kw_only=True)
class FlinkRun:
    events: int
    seconds: float
    events_per_s: float
    job_id: str


def bench_topic(settings: Settings) -> Topic:
    """A fresh topic shaped like the engagement topic, for one benchmark run."""
    topic = Topic(name=f"fyp.bench-{uuid.uuid4().hex[:8]}.v1", key_field=ENGAGEMENT.key_field,
                  partitions=ENGAGEMENT.partitions, record_names=ENGAGEMENT.record_names)
    admin = AdminClient(settings.kafka_client_config())
    admin.create_topics([NewTopic(topic.name, num_partitions=topic.partitions, replication_factor=1)])[
        topic.name].result(30)
    return topic


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = Consumer({**settings.kafka_client_config(), "group.id": "fyp-bench-offsets", "log_level": 0})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def preload(settings: Settings, topic: Topic, events: int, *, users: int, videos: int, seed: int) -> float:
    """Produce `events` generated events to `topic` as fast as possible; returns the produce rate."""
    report = produce(TrafficGenerator(TrafficConfig(users=users, videos=videos), seed),
                     ProducePlan(rate=0, duration=None, max_events=events),
                     client_config=settings.kafka_client_config(), topic=topic)
    return report.rate


def _job(settings: Settings, job_id: str) -> dict:
    return httpx.get(f"{settings.flink_rest_url}/jobs/{job_id}", timeout=10).json()


def run_flink_bounded(
    settings: Settings, topic: Topic, events: int, *, timeout: timedelta, only_feature_sets: tuple[str, ...] = (),
    properties: dict[str, str] | None = None, per_set_sql: bool = False,
) -> FlinkRun:
    """Run the features job over the whole of `topic`, bounded, and time it from source start to finish.

    only_feature_sets: compute just these feature sets (the peers compute video_engagement only).
    properties: Flink configuration for the run (`flink run -D`), e.g. {"state.backend.type": "hashmap"}.
    per_set_sql: every set through its own SQL GROUP BY, none through the key-family operators (the job's
        `--per-set-sql`, the reference path), for comparisons.
    """
    ends = end_offsets(settings, topic.name)
    starts = ",".join(f"{p}:0" for p in ends)
    stops = ",".join(f"{p}:{o}" for p, o in ends.items())
    job_id = submit_job(settings, ENGAGEMENT_FEATURES_JOB.job, properties=properties, job_args=[
        "--topic", topic.name, "--group-id", f"bench-{topic.name}", "--start-offsets", starts,
        "--end-offsets", stops, *(["--only-feature-sets", ",".join(only_feature_sets)] if only_feature_sets else []),
        *(["--per-set-sql"] if per_set_sql else [])])
    deadline = time.monotonic() + timeout.total_seconds()
    while time.monotonic() < deadline:
        job = _job(settings, job_id)
        if job["state"] in ("FINISHED", "FAILED", "CANCELED"):
            break
        time.sleep(1)
    else:
        raise StackError(f"the bounded features job {job_id} did not finish within {timeout}")
    if job["state"] != "FINISHED":
        raise StackError(f"the bounded features job {job_id} ended {job['state']}; see the Flink UI")
    source = next(v for v in job["vertices"] if v["name"].startswith("Source"))
    times = httpx.get(f"{settings.flink_rest_url}/jobs/{job_id}/vertices/{source['id']}/subtasktimes",
                      timeout=10).json()
    running_since = min(s["timestamps"]["RUNNING"] for s in times["subtasks"])
    seconds = (job["end-time"] - running_since) / 1000
    return FlinkRun(events=events, seconds=round(seconds, 2), events_per_s=round(events / seconds, 1),
                    job_id=job_id)


def _redis_forks(settings: Settings) -> int:
    """Redis's fork count (`INFO stats`): one per RDB snapshot (or AOF rewrite). A snapshot of a big dataset
    takes seconds of CPU on this machine, so a round that overlaps one runs slower."""
    return int(redis_client(settings).info("stats")["total_forks"])


@contextmanager
def redis_snapshots_paused(settings: Settings, pause: bool) -> Iterator[None]:
    """With `pause`, no RDB snapshot starts until the block ends (`CONFIG SET save ""`); the previous policy
    is restored after, also on error. Without it, nothing changes."""
    if not pause:
        yield
        return
    client = redis_client(settings)
    previous = client.config_get("save")["save"]
    client.config_set("save", "")
    try:
        yield
    finally:
        client.config_set("save", previous)


def compare(
    settings: Settings, topic: Topic, events: int, *, repeat: int = 1, peers: bool = True, warmup: bool = True,
    properties: dict[str, str] | None = None, status: Callable[[str], None] = lambda _: None,
) -> dict:
    """The job with all sets, and (with `peers`) the job with video_engagement only, the Quix peer and the naive
    peer, over the same topic, `repeat` rounds in that order (so drift of the machine touches every contestant
    alike). Each figure is the median of its rounds; `runs` lists every round; the ratios compare medians.
    `redis_snapshots` counts, per round, the Redis snapshots that started during it.

    warmup: first run the job once with all sets, unmeasured (its rate is reported as `warmup_events_per_s`).
    On a TaskManager that has not run the job yet, the JIT compiles Flink's and the aggregates' code during
    the first rounds, which then run up to 25 % slower; the Python peers have no such phase."""
    from fyp.bench.peers.runner import run_peer

    runs: dict[str, list[float]] = {"all_sets": [], **({"video_only": [], "quix": [], "naive": []} if peers else {})}
    snapshots: dict[str, list[int]] = {name: [] for name in runs}
    seconds: list[float] = []

    def timed(name: str, run: Callable[[], float]) -> None:
        forks = _redis_forks(settings)
        runs[name].append(run())
        snapshots[name].append(_redis_forks(settings) - forks)

    warmup_rate = None
    if warmup:
        status("warming up: the features job (all feature sets) once, unmeasured …")
        warmup_rate = run_flink_bounded(settings, topic, events, timeout=timedelta(minutes=30),
                                        properties=properties).events_per_s
    for round_ in range(1, repeat + 1):
        of = f" (round {round_} of {repeat})" if repeat > 1 else ""
        status(f"running the features job (all feature sets) bounded over the topic{of} …")

        def all_sets() -> float:
            flink = run_flink_bounded(settings, topic, events, timeout=timedelta(minutes=30), properties=properties)
            seconds.append(flink.seconds)
            return flink.events_per_s

        timed("all_sets", all_sets)
        if not peers:
            continue
        # The peers compute video_engagement only: time the job on the same work for the ratios.
        status(f"running the features job (video_engagement only){of} …")
        timed("video_only", lambda: run_flink_bounded(
            settings, topic, events, timeout=timedelta(minutes=30), only_feature_sets=("video_engagement",),
            properties=properties).events_per_s)
        for name in ("quix", "naive"):
            status(f"running the {name} peer{of} …")
            group_id = f"bench-{name}-{round_}-{topic.name}"
            timed(name, lambda name=name, group_id=group_id: run_peer(
                name, settings, events=events, group_id=group_id, timeout_s=1800, topic=topic.name)["events_per_s"])
    median = {name: round(statistics.median(values), 1) for name, values in runs.items()}
    data: dict = {"events_per_s": median["all_sets"], "flink_seconds": round(statistics.median(seconds), 2),
                  "repeat": repeat, "runs": runs, "redis_snapshots": snapshots}
    if warmup:
        data["warmup_events_per_s"] = warmup_rate
    if peers:
        data["video_only_events_per_s"] = median["video_only"]
        for name in ("quix", "naive"):
            data[f"{name}_events_per_s"] = median[name]
            data[f"flink_vs_{name}"] = round(median["video_only"] / median[name], 2)
    return data
