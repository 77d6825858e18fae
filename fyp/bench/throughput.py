"""`fyp bench throughput`: sustained events/s of the features job, and of the Python peers, on the same events.

N generated events go to a fresh topic. The Flink features job then runs bounded over exactly those offsets
(it finishes when done). Each peer then consumes the same topic from the start (see fyp/bench/peers). Every
contestant is timed on two spans (clocks and CPU accounting: `fyp.bench.throughput_report.CLOCKS`):
first_to_last_s, from the first record read to the last Redis write (the rate is N over it), and
submit_to_last_s, which adds start-up (job submission; the peer's imports and consumer group join).
"""

from __future__ import annotations

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
from fyp.bench.proc_cpu import CpuSampler, load_average_1m, taskmanager_pids
from fyp.bench.throughput_report import summarize
from fyp.config import Settings
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
from fyp.stack.process import StackError
from fyp.stack.submit import list_jobs, submit_job
from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.traffic.producer import ProducePlan, produce
from schemas.topics import ENGAGEMENT, Topic

__all__ = ["FlinkRun", "bench_topic", "compare", "flink_record", "peer_record", "preload", "redis_forks",
           "redis_snapshots_paused", "run_flink_bounded"]


@dataclass(frozen=True, kw_only=True)
class FlinkRun:
    """One bounded run of the job. seconds = first_to_last_s: from its source subtasks going RUNNING (≈ the first
    record read) to the job's end (its Redis writers flush before their tasks finish, so ≈ the last write);
    submit_to_last_s: from just before `flink run` (the client JVM, job graph, deployment) to the same end.
    cpu_seconds: TaskManager CPU (every TaskManager of the stack) over first_to_last_s, interpolated from samples
    every 0.2 s; cpu_seconds_submit_to_last over submit_to_last_s."""

    events: int
    seconds: float
    events_per_s: float
    job_id: str
    submit_to_last_s: float | None = None
    cpu_seconds: float | None = None
    cpu_seconds_submit_to_last: float | None = None

    @property
    def first_to_last_s(self) -> float:
        return self.seconds

    @property
    def events_per_cpu_s(self) -> float | None:
        return round(self.events / self.cpu_seconds, 1) if self.cpu_seconds else None


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
    with CpuSampler(taskmanager_pids(settings)) as cpu:
        submitted = time.time()
        job_id = submit_job(settings, ENGAGEMENT_FEATURES_JOB.job, properties=properties, job_args=[
            "--topic", topic.name, "--group-id", f"bench-{topic.name}", "--start-offsets", starts, "--end-offsets",
            stops, *(["--only-feature-sets", ",".join(only_feature_sets)] if only_feature_sets else []),
            *(["--per-set-sql"] if per_set_sql else [])])
        job = _wait_for_end(settings, job_id, timeout)
    if job["state"] != "FINISHED":
        raise StackError(f"the bounded features job {job_id} ended {job['state']}; see the Flink UI")
    source = next(v for v in job["vertices"] if v["name"].startswith("Source"))
    times = httpx.get(f"{settings.flink_rest_url}/jobs/{job_id}/vertices/{source['id']}/subtasktimes",
                      timeout=10).json()
    running_since = min(s["timestamps"]["RUNNING"] for s in times["subtasks"]) / 1000  # epoch ms, this host's clock
    ended = job["end-time"] / 1000
    seconds = ended - running_since
    return FlinkRun(events=events, seconds=round(seconds, 2), events_per_s=round(events / seconds, 1),
                    job_id=job_id, submit_to_last_s=round(ended - submitted, 2),
                    cpu_seconds=round(cpu.between(running_since, ended), 3),
                    cpu_seconds_submit_to_last=round(cpu.between(submitted, ended), 3))


def _wait_for_end(settings: Settings, job_id: str, timeout: timedelta) -> dict:
    deadline = time.monotonic() + timeout.total_seconds()
    while time.monotonic() < deadline:
        job = _job(settings, job_id)
        if job["state"] in ("FINISHED", "FAILED", "CANCELED"):
            return job
        time.sleep(0.5)
    raise StackError(f"the bounded features job {job_id} did not finish within {timeout}")


def redis_forks(settings: Settings) -> int:
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
    properties: dict[str, str] | None = None, per_set_sql: bool = False,
    status: Callable[[str], None] = lambda _: None,
) -> dict:
    """The job with all sets, and (with `peers`) the job with video_engagement only and every peer of
    `fyp.bench.peers.runner.PEERS`, over the same topic, `repeat` rounds in that order (so drift of the machine
    touches every contestant alike). Every round is reported (`rounds`, with the 1-minute load average at its
    start and end); each figure is the median of its rounds; the ratios compare medians (see `summarize`).
    `redis_snapshots` counts, per round, the Redis snapshots that started during a contestant's run.

    warmup: first run the job once with all sets, unmeasured (its rate is reported as `warmup_events_per_s`).
    On a TaskManager that has not run the job yet, the JIT compiles Flink's and the aggregates' code during
    the first rounds, which then run up to 25 % slower; the Python peers have no such phase.
    per_set_sql: each round also runs the all-sets job with every set through its own SQL GROUP BY (the job's
    `--per-set-sql`, no key-family operator), right after the default all-sets run: the before/after of the
    key-family design in the same rounds."""
    from fyp.bench.peers.runner import PEERS, run_peer

    peer_names = tuple(PEERS) if peers else ()
    jobs_beside = sorted(job.name for job in list_jobs(settings) if job.state == "RUNNING")

    def timed(run: Callable[[], dict]) -> dict:
        forks = redis_forks(settings)
        record = run()
        return record | {"redis_snapshots": redis_forks(settings) - forks}

    def flink(only: tuple[str, ...] = (), reference: bool = False) -> dict:
        return flink_record(run_flink_bounded(settings, topic, events, timeout=timedelta(minutes=30),
                                              only_feature_sets=only, properties=properties, per_set_sql=reference))

    warmup_rate = None
    if warmup:
        status("warming up: the features job (all feature sets) once, unmeasured …")
        warmup_rate = run_flink_bounded(settings, topic, events, timeout=timedelta(minutes=30),
                                        properties=properties).events_per_s
    rounds: list[dict] = []
    for round_ in range(1, repeat + 1):
        of = f" (round {round_} of {repeat})" if repeat > 1 else ""
        record: dict = {"round": round_, "load_1m_start": load_average_1m()}
        status(f"running the features job (all feature sets) bounded over the topic{of} …")
        record["all_sets"] = timed(flink)
        if per_set_sql:
            status(f"running the features job (all feature sets, each through its own SQL GROUP BY){of} …")
            record["all_sets_per_set_sql"] = timed(lambda: flink(reference=True))
        if peer_names:
            # The peers compute video_engagement only: time the job on the same work for the ratios.
            status(f"running the features job (video_engagement only){of} …")
            record["video_only"] = timed(lambda: flink(("video_engagement",)))
        for name in peer_names:
            status(f"running the {name} peer{of} …")
            group_id = f"bench-{name}-{round_}-{topic.name}"
            record[name] = timed(lambda name=name, group_id=group_id: peer_record(run_peer(
                name, settings, events=events, group_id=group_id, timeout_s=1800, topic=topic.name)))
        record["load_1m_end"] = load_average_1m()
        rounds.append(record)
    data = summarize(rounds, peer_names, per_set_sql=per_set_sql)
    if warmup:
        data["warmup_events_per_s"] = warmup_rate
    data["jobs_running_beside"] = jobs_beside  # their work shares the TaskManager, and counts in its CPU
    return data


def flink_record(run: FlinkRun) -> dict:
    """One round of the job, as `summarize` reads it."""
    return {"events_per_s": run.events_per_s, "first_to_last_s": run.first_to_last_s,
            "submit_to_last_s": run.submit_to_last_s, "cpu_seconds": run.cpu_seconds,
            "events_per_cpu_s": run.events_per_cpu_s, "cpu_seconds_submit_to_last": run.cpu_seconds_submit_to_last}


def peer_record(run: dict) -> dict:
    """One round of a peer (`run_peer`'s report), as `summarize` reads it."""
    return {key: run.get(key) for key in
            ("events_per_s", "first_to_last_s", "submit_to_last_s", "cpu_seconds", "events_per_cpu_s")}
