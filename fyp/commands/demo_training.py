"""The demo's training-data step (docs/TRAINING.md): logged ranking reads while the traffic runs, then the
point-in-time training table, the served rows the join job wrote, and the skew check between the two.

The demo's traffic runs on an accelerated clock (fyp/traffic/clock.py): its minutes of event time let the
10-minute label windows of training/watch_outcomes.py close within the run. The reads pass that clock's reading
as their `now`, so what they log is what serving would have read at that simulated moment.

The skew check's in-flight cause needs a bound on how far the features job trails the traffic: in event time that is
its wall-clock lag times the clock's speed, and on a busy laptop the lag is far above the job's configured flush
(fyp/training/skew.py IN_FLIGHT_BOUND_MS). The job trails some Kafka partitions more than others (in issue #17's
run, 327 to 1,010 s of event time depending on the partition), and a value's in-flight events are those of the
partitions it trails in, so the demo measures the lag per partition: with each read it reads the values of a few
hundred users (the engagement topic is keyed by user, so each user's events are on one partition,
fyp.traffic.partitioner) and notes, per partition, how far the read's time is ahead of the newest event time any of
that partition's users shows in Redis: what the job had applied there, on the partition's leading deduplication
lane (a user's events go through both). The check's bound is the largest lag of the run; each serve is searched
first within the lags measured at its own read (`LoggedReads.request_bounds`), and the demo prints each partition's
largest lag, which bounds nothing (the trailing lane can be further behind). The newest event time of the region x
language values (a few keys that nearly every event updates) is noted too: it follows the partition read furthest,
the smallest lag.
"""

from __future__ import annotations

import random
import threading
import time
from itertools import pairwise
from typing import Any

from features import feature_set_for_entity
from fyp.commands.serving import scan_ids
from fyp.serving.client import RECENT_SEEN_PREFIX
from fyp.traffic.clock import Clock

__all__ = ["LoggedReads", "applied_by_partition", "lag_by_tenth", "probe_keys", "request_bounds_at",
           "training_summary"]

READ_EVERY_S = 0.2
CANDIDATES = 50
PROBE_USERS = 600  # users whose values show, per partition, how far the job has applied it (~100 per partition)


class LoggedReads:
    """A thread making a feed-like read (`FeatureClient.for_request`, 1 user + CANDIDATES videos) every
    READ_EVERY_S, every one logged (sample rate 1), at the traffic clock's time."""

    def __init__(self, settings: Any, clock: Clock, *, seed: int = 7) -> None:
        from fyp.serving import FeatureClient
        from fyp.serving.served_log import ServedLog

        self._settings, self._clock, self._random = settings, clock, random.Random(seed)
        self.log = ServedLog.from_settings(settings, sample_rate=1.0)
        self.client = FeatureClient.from_settings(settings, served_log=self.log)
        self.requests = 0
        self.max_lag_ms = 0  # the most a read's time was ahead of the newest event time it read
        self.max_lag_ms_by_partition: dict[int, int] = {}  # the same per engagement partition, from its users
        self.lags_ms: list[int] = []  # per read, its largest lag over the partitions: how the lag moved over the run
        self._read_lags: list[tuple[str, dict[int, int]]] = []  # per read: its request id, its lag per partition
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-logged-reads", daemon=True)

    def start(self) -> LoggedReads:
        self._thread.start()
        return self

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(10)
        stats = self.log.close()
        return {"requests": self.requests, "logged": stats.logged, "dropped": stats.dropped, "failed": stats.failed,
                "max_lag_ms": self.max_lag_ms, "max_lag_ms_by_partition": dict(sorted(
                    self.max_lag_ms_by_partition.items())), "lag_ms_by_tenth": lag_by_tenth(self.lags_ms)}

    def _run(self) -> None:
        scanner = self._settings.redis_client()
        video_prefix = feature_set_for_entity("video").key_prefix
        market_prefix = feature_set_for_entity("region_language").key_prefix
        markets: list[tuple[str, ...]] = []
        users: list[str] = []
        videos: list[str] = []
        probe: dict[int, list[str]] = {}  # engagement partition: keys of users whose events are on it
        while not self._stop.wait(READ_EVERY_S):
            if len(users) < 50 or len(videos) < CANDIDATES:  # the first seconds: Redis is still filling
                users = scan_ids(scanner, RECENT_SEEN_PREFIX, 500)
                videos = scan_ids(scanner, video_prefix, 5_000)
                if len(videos) < CANDIDATES or not users:
                    continue
            now = self._clock()
            user, candidates = self._random.choice(users), self._random.sample(videos, CANDIDATES)
            request = self.client.for_request(user, candidates, now_ms=now)
            self.requests += 1
            if not markets:
                markets = [tuple(i.split(":", 1)) for i in scan_ids(scanner, market_prefix, 50)]
            newest = max((f.event_time_ms for m in markets if (f := self.client.get("region_language", m))),
                         default=0)
            if newest:
                self.max_lag_ms = max(self.max_lag_ms, now - newest)
            if not probe or (self.requests % 25 == 0 and sum(map(len, probe.values())) < PROBE_USERS):
                probe = probe_keys(scan_ids(scanner, RECENT_SEEN_PREFIX, PROBE_USERS))  # more users as they come
            applied = applied_by_partition(scanner, probe, now)
            for partition, newest_applied in applied.items():
                self.max_lag_ms_by_partition[partition] = max(self.max_lag_ms_by_partition.get(partition, 0),
                                                              now - newest_applied)
            if applied:
                self.lags_ms.append(now - min(applied.values()))
            if request.request_id:
                self._read_lags.append((request.request_id, {p: now - a for p, a in applied.items()}))

    def request_bounds(self, floor_ms: int) -> dict[str, dict[int, int]]:
        """Per logged request, per partition, the in-flight bound of its serve: the lag measured at that read, or at
        the read before or after it where larger (the probe runs just after its read, and the job's progress between
        reads is uneven), at least `floor_ms`. Partitions whose lag was not measured at any of the three reads are
        left out (the check then takes the run's bound for them). (`request_bounds_at`)"""
        return request_bounds_at(self._read_lags, floor_ms)


def request_bounds_at(read_lags: list[tuple[str, dict[int, int]]], floor_ms: int) -> dict[str, dict[int, int]]:
    """Per request (in read order, with its lag per partition), per partition the largest lag of that read and
    its neighbours, at least floor_ms.

    >>> request_bounds_at([("a", {0: 50}), ("b", {0: 10, 1: 5}), ("c", {0: 20})], floor_ms=8)
    {'a': {0: 50, 1: 8}, 'b': {0: 50, 1: 8}, 'c': {0: 20, 1: 8}}
    """
    found: dict[str, dict[int, int]] = {}
    for i, (request_id, _) in enumerate(read_lags):
        bounds: dict[int, int] = {}
        for _, lags in read_lags[max(0, i - 1):i + 2]:
            for partition, lag in lags.items():
                bounds[partition] = max(bounds.get(partition, floor_ms), lag)
        found[request_id] = dict(sorted(bounds.items()))
    return found


def lag_by_tenth(lags_ms: list[int]) -> list[int]:
    """The largest lag of each tenth of the run's reads, in order: whether the job trailed from the start, fell
    behind as the traffic went on, or caught up.

    >>> lag_by_tenth([5, 1, 9, 2, 3, 4, 8, 7, 6, 0])
    [5, 1, 9, 2, 3, 4, 8, 7, 6, 0]
    >>> lag_by_tenth([1, 2, 3])
    [1, 2, 3]
    >>> lag_by_tenth(list(range(25)))[:3], lag_by_tenth([])
    ([1, 4, 6], [])
    """
    tenths = min(10, len(lags_ms))
    if not tenths:
        return []
    bounds = [len(lags_ms) * t // tenths for t in range(tenths + 1)]
    return [max(lags_ms[a:b]) for a, b in pairwise(bounds)]


def probe_keys(users: list[str]) -> dict[int, list[str]]:
    """Per partition of the engagement topic (keyed by user), the Redis keys of the users' main feature set."""
    from fyp.traffic.partitioner import kafka_partition
    from schemas.topics import ENGAGEMENT

    prefix = feature_set_for_entity("user").key_prefix
    found: dict[int, list[str]] = {}
    for user in users:
        found.setdefault(kafka_partition(user, ENGAGEMENT.partitions), []).append(prefix + user)
    return found


def applied_by_partition(redis: Any, probe: dict[int, list[str]], now_ms: int) -> dict[int, int]:
    """Per partition, the newest event time its probed users' values hold (one MGET): how far the features job
    had applied that partition's events. Partitions whose users hold no value are left out."""
    from fyp.serving.layout import ReadPlan, decode_matrix

    plan = ReadPlan.of(feature_set_for_entity("user"))
    keys = [key for partition in sorted(probe) for key in probe[partition]]
    _, times = decode_matrix(plan, redis.mget(keys) if keys else [], now_ms)
    found: dict[int, int] = {}
    at = 0
    for partition in sorted(probe):
        newest = int(times[at:at + len(probe[partition])].max(initial=0))
        at += len(probe[partition])
        if newest:
            found[partition] = newest
    return found


def training_summary(settings: Any, *, in_flight_bound_ms: int,
                     request_bounds_ms: dict[str, dict[int, int]] | None = None,
                     timeout_s: float = 90.0) -> dict[str, Any]:
    """Once the join job has committed served rows: build the training table and run the skew check with the
    given in-flight bound (event-time ms), searching each row within its request's own bounds first (measured at
    its read, capped by the bound)."""
    from connectors.iceberg_tables import catalog
    from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
    from fyp.stack.process import wait_until
    from fyp.stack.submit import running_parallelism
    from fyp.training.build import build
    from fyp.training.skew import check
    from training import watch_outcomes

    declared = watch_outcomes.v1
    lake = catalog(settings)

    def served_rows() -> int:
        try:
            return len(lake.load_table(declared.served_table).scan(selected_fields=("request_id",)).to_arrow())
        except Exception:  # not created yet, or no snapshot yet
            return 0

    wait_until(lambda: served_rows() > 0, timeout_s=timeout_s, interval_s=2)
    time.sleep(2)
    built = build(lake, declared)
    # The features job ran all along, at the parallelism it served with: its deduplication's subtasks.
    subtasks = running_parallelism(settings, ENGAGEMENT_FEATURES_JOB)
    report = check(lake, declared, sample=200, in_flight_bound_ms=in_flight_bound_ms,
                   dedup_subtasks=subtasks, request_bounds_ms=request_bounds_ms)
    return {
        "table": built.table, "rows": built.rows, "label_rates": built.label_rates,
        "rows_per_s": round(built.rows_per_s), "served_table": declared.served_table, "served_rows": served_rows(),
        "skew": {"rows": report.rows, "mismatches": report.mismatches, "unexplained": report.unexplained,
                 "by_cause": report.by_cause, "skipped": report.skipped, "in_flight_bound_ms": in_flight_bound_ms,
                 "dedup_subtasks": report.dedup_subtasks, "rows_with_own_bounds": report.rows_with_own_bounds,
                 "beyond_own_bounds": report.beyond_own_bounds,
                 "unexplained_at_search_limit": report.unexplained_at_search_limit},
    }


def newest_event_time_ms(settings: Any, topic: str) -> int:
    """The newest Kafka timestamp at the end of any partition of `topic` (producers stamp the event time): where
    a new run's clock may start without its events trailing a partition by more than the allowed lateness.
    0 when the topic is empty."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**settings.kafka_client_config(), "group.id": "fyp-demo-clock",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        newest = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, high - 1)])
            message = consumer.poll(10)
            if message is not None and message.error() is None:
                newest = max(newest, message.timestamp()[1])
        return newest
    finally:
        consumer.close()


def demo_clock(*, now_ms: int, duration_s: float, speed: float, newest_ms: int) -> tuple[int, float]:
    """(start, speed) of the demo's event-time clock: it ends at about `now_ms` after `duration_s`, covering up to
    `duration_s * speed` of event time, but starts no earlier than `newest_ms` (events already in Kafka), so that
    no event trails them; never slower than the wall clock, and never ahead of it.

    >>> demo_clock(now_ms=10_000_000, duration_s=60, speed=20, newest_ms=0)
    (8800000, 20.0)
    >>> demo_clock(now_ms=10_000_000, duration_s=60, speed=20, newest_ms=9_700_000)  # a run 5 min ago
    (9700000, 5.0)
    >>> demo_clock(now_ms=10_000_000, duration_s=60, speed=20, newest_ms=9_990_000)  # one just before
    (9990000, 1.0)
    """
    start = max(now_ms - int(duration_s * speed * 1000), newest_ms)
    actual = max(1.0, (now_ms - start) / (duration_s * 1000))
    return start, actual
