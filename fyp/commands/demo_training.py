"""The demo's training-data step (docs/TRAINING.md): logged ranking reads while the traffic runs, then the
point-in-time training table, the served rows the join job wrote, and the skew check between the two.

The demo's traffic runs on an accelerated clock (fyp/traffic/clock.py): its minutes of event time let the
10-minute label windows of training/watch_outcomes.py close within the run. The reads pass that clock's reading
as their `now`, so what they log is what serving would have read at that simulated moment.

The skew check's in-flight cause needs a bound on how far the features job trails the traffic: in event time that
is its wall-clock lag times the clock's speed, and on a busy laptop the lag is far above the job's configured
flush (fyp/training/skew.py IN_FLIGHT_BOUND_MS). So the demo measures it: with each read it notes how far the
read's time is ahead of the newest event time of the region x language values (a few keys that nearly every
event updates, so their newest event time is the job's progress as Redis shows it), and the check runs with
the largest such lag of the run as its bound, which the demo prints.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from features import feature_set_for_entity
from fyp.commands.serving import scan_ids
from fyp.serving.client import RECENT_SEEN_PREFIX
from fyp.traffic.clock import Clock

__all__ = ["LoggedReads", "training_summary"]

READ_EVERY_S = 0.2
CANDIDATES = 50


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
                "max_lag_ms": self.max_lag_ms}

    def _run(self) -> None:
        scanner = self._settings.redis_client()
        video_prefix = feature_set_for_entity("video").key_prefix
        market_prefix = feature_set_for_entity("region_language").key_prefix
        markets: list[tuple[str, ...]] = []
        users: list[str] = []
        videos: list[str] = []
        while not self._stop.wait(READ_EVERY_S):
            if len(users) < 50 or len(videos) < CANDIDATES:  # the first seconds: Redis is still filling
                users = scan_ids(scanner, RECENT_SEEN_PREFIX, 500)
                videos = scan_ids(scanner, video_prefix, 5_000)
                if len(videos) < CANDIDATES or not users:
                    continue
            now = self._clock()
            user, candidates = self._random.choice(users), self._random.sample(videos, CANDIDATES)
            self.client.for_request(user, candidates, now_ms=now)
            self.requests += 1
            if not markets:
                markets = [tuple(i.split(":", 1)) for i in scan_ids(scanner, market_prefix, 50)]
            newest = max((f.event_time_ms for m in markets if (f := self.client.get("region_language", m))),
                         default=0)
            if newest:
                self.max_lag_ms = max(self.max_lag_ms, now - newest)


def training_summary(settings: Any, *, in_flight_bound_ms: int, timeout_s: float = 90.0) -> dict[str, Any]:
    """Once the join job has committed served rows: build the training table and run the skew check with the
    given in-flight bound (event-time ms)."""
    from connectors.iceberg_tables import catalog
    from fyp.stack.process import wait_until
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
    report = check(lake, declared, sample=200, in_flight_bound_ms=in_flight_bound_ms)
    return {
        "table": built.table, "rows": built.rows, "label_rates": built.label_rates,
        "rows_per_s": round(built.rows_per_s), "served_table": declared.served_table, "served_rows": served_rows(),
        "skew": {"rows": report.rows, "mismatches": report.mismatches, "unexplained": report.unexplained,
                 "by_cause": report.by_cause, "skipped": report.skipped, "in_flight_bound_ms": in_flight_bound_ms},
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
