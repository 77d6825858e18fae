"""The "no framework" peer: what a competent engineer writes in one process without a stream processor, as the
fair single-core baseline of `fyp bench throughput`.

A confluent-kafka consumer loop, a dict of entity states, one Redis pipeline per batch. Per batch of up to 10,000
records: decode each (`fast_decode.FastDecoder`: the rows of udfs.envelope.to_engagement_row, from code generated
once per schema), drop bad ones, fold good ones into their entity's state (`fast_fold.FastFold`: the feature set
compiled to straight-line code, one ring of tiles per window, forward decay), write the absolute packed value of
every entity the batch touched in one pipeline (`redis_writer`: the Java sink's Lua check, never older over newer,
a TTL on every key), then commit the batch's offsets.

What it does not guarantee, unlike the job: no deduplication of event ids; no checkpoints, so state lives in this
process only and a restart starts empty; offsets are committed after the batch's write (at-least-once: a crash
between the two replays the batch into fresh state). It is a benchmark peer, not a replacement for the job.
Differences of its values from the reference evaluator's are those of `fast_fold` (decayed columns within 1e-9
relative; docs/PERFORMANCE.md "The naive peer").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException

from features.engagement.video_engagement import v1
from featurespec import FeatureSet
from fyp.bench.peers.fast_decode import FastDecoder
from fyp.bench.peers.fast_fold import FastFold
from fyp.bench.peers.redis_writer import PackedFeatureWriter, redis_client
from fyp.bench.peers.result import PeerRun
from fyp.config import Settings
from schemas.topics import ENGAGEMENT

__all__ = ["BATCH_SIZE", "fold_batch", "run_naive"]

BATCH_SIZE = 10_000
POLL_TIMEOUT_S = 0.5


def fold_batch(values: list[bytes], now_ms: int, decode: Callable[[bytes, int], tuple], fold: Any,
               states: dict[str, Any]) -> dict[str, int]:
    """Decode `values` and fold each good row into its entity's state in `states` (created on its first row);
    returns the entities the batch touched, with how many rows each took. A bad record (its row's last field,
    the error, is set) or a row with no key is skipped: the job sends the first to the dead-letter topic.
    `fold` has FeatureEvaluator's `key`, `new_state` and `update` (FastFold, or the reference itself)."""
    key, update, new_state = fold.key, fold.update, fold.new_state
    touched: dict[str, int] = {}
    for value in values:
        row = decode(value, now_ms)
        if row[-1] is not None:
            continue
        entity = key(row)
        if entity is None:
            continue
        state = states.get(entity)
        if state is None:
            state = states[entity] = new_state()
        update(state, row)
        touched[entity] = touched.get(entity, 0) + 1
    return touched


def run_naive(
    settings: Settings, *, events: int, group_id: str, timeout_s: float, topic: str = ENGAGEMENT.name,
    feature_set: FeatureSet = v1,
) -> PeerRun:
    """Consume `topic` from the earliest offset as consumer group `group_id` until `events` records were processed
    and written; raises TimeoutError after `timeout_s` seconds (from the call) if they were not."""
    fold = FastFold.of(feature_set)
    decode = FastDecoder()
    writer = PackedFeatureWriter(redis_client(settings), feature_set)
    consumer = Consumer({
        **settings.kafka_client_config(), "group.id": group_id, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "enable.partition.eof": False, "log_level": 0,
    })
    states: dict[str, list[float]] = {}
    deadline = time.monotonic() + timeout_s
    processed = good = 0
    first = last_write = None
    first_cpu = last_cpu = 0.0
    last_write_at: float | None = None
    consumer.subscribe([topic])
    try:
        while processed < events:
            if time.monotonic() > deadline:
                raise TimeoutError(f"naive peer: {processed} of {events} events after {timeout_s} s")
            messages = consumer.consume(num_messages=BATCH_SIZE, timeout=POLL_TIMEOUT_S)
            if not messages:
                continue
            if first is None:
                first, first_cpu = time.perf_counter(), time.process_time()
            now_ms = int(time.time() * 1000)
            values = []
            for message in messages[: events - processed]:
                if message.error() is not None:
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(message.error())
                values.append(message.value())
            processed += len(values)
            touched = fold_batch(values, now_ms, decode, fold, states)
            good += sum(touched.values())
            if touched:
                writer.write({entity: fold.pack(states[entity]) for entity in touched})
                last_write, last_cpu, last_write_at = time.perf_counter(), time.process_time(), time.time()
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return PeerRun(events=processed, good_events=good, seconds=(last_write or first or 0.0) - (first or 0.0),
                   cpu_seconds=max(last_cpu - first_cpu, 0.0), redis_writes=writer.written, entities=len(states),
                   last_write_at=last_write_at)
