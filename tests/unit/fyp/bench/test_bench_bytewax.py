"""fyp/bench/peers/bytewax_flow: the whole flow on in-memory messages (TestingSource) into a collecting writer,
against the reference evaluator folding the same records in the same order; the sink and the bounded source
on plain data."""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSource

from features.engagement.video_engagement import v1
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import engagement_row
from fyp.bench.peers.bytewax_flow import FlowCounts, RedisFeatureSink, build_flow, run_flow
from fyp.traffic import TrafficConfig, TrafficGenerator
from udfs.envelope import to_engagement_row


class CollectingWriter:
    """Keeps every batch it is given, as PackedFeatureWriter would write them (no stale check, no Redis)."""

    def __init__(self) -> None:
        self.batches: list[dict[str, bytes]] = []
        self.written = 0

    def write(self, values: Mapping[str, bytes]) -> int:
        self.batches.append(dict(values))
        self.written += len(values)
        return len(values)

    def latest(self) -> dict[str, bytes]:
        return {video: packed for batch in self.batches for video, packed in batch.items()}


def generated_messages(views: int) -> list[KafkaSourceMessage]:
    """Generated traffic with bad records and late events among it, as Kafka messages."""
    config = TrafficConfig(users=40, videos=60, malformed_fraction=0.05, late_fraction=0.1)
    batch = TrafficGenerator(config, seed=11).next_batch(views)
    return [KafkaSourceMessage(key=key, value=value) for key, value in batch.pairs]


def reference(values: list[bytes]) -> tuple[dict[str, bytes], int, int]:
    """Each video's packed value after folding `values` in order; the bad and keyless counts."""
    evaluator = FeatureEvaluator.of(v1)
    states: dict = {}
    bad = keyless = 0
    now_ms = int(time.time() * 1000)
    for value in values:
        row = to_engagement_row(value, now_ms)
        if row[-1] is not None:
            bad += 1
            continue
        video = evaluator.key(row)
        if video is None:
            keyless += 1
            continue
        evaluator.update(states.setdefault(video, evaluator.new_state()), row)
    return {video: evaluator.pack(state) for video, state in states.items()}, bad, keyless


@pytest.mark.parametrize("batch_size", [1, 97])
def test_the_flow_writes_each_videos_reference_value_and_stops_at_the_limit(batch_size: int) -> None:
    messages = generated_messages(400)
    limit = len(messages) - 7  # mid-batch: the source must cut its last batch
    writer = CollectingWriter()
    sink = RedisFeatureSink(writer, FeatureEvaluator.of(v1))
    counts = FlowCounts(limit=limit)
    run_flow(build_flow(TestingSource(messages, batch_size=batch_size), sink, counts))

    expected, bad, keyless = reference([m.value for m in messages[:limit]])
    assert bad > 0, "the generated traffic holds bad records"
    assert (counts.events, counts.bad, counts.keyless, counts.folded) == (limit, bad, keyless,
                                                                         limit - bad - keyless)
    assert writer.latest() == expected
    assert sink.keys == set(expected)
    assert not counts.timed_out and counts.first is not None and sink.last_write >= counts.first
    assert max(len(b) for b in writer.batches) > 1 or batch_size == 1, "one write per batch, not per record"


def test_past_the_deadline_the_source_ends_without_reading() -> None:
    writer = CollectingWriter()
    counts = FlowCounts(limit=10, deadline=time.monotonic() - 1)
    run_flow(build_flow(TestingSource(generated_messages(10)), RedisFeatureSink(writer, FeatureEvaluator.of(v1)),
                        counts))
    assert (counts.timed_out, counts.events, writer.batches) == (True, 0, [])


def test_the_sink_writes_the_newest_state_of_each_video_once_per_batch() -> None:
    evaluator = FeatureEvaluator.of(v1)
    writer = CollectingWriter()
    sink = RedisFeatureSink(writer, evaluator)
    older, newer, other = evaluator.new_state(), evaluator.new_state(), evaluator.new_state()
    for state, event_time in ((older, 1_000), (newer, 2_000), (other, 1_500)):
        evaluator.update(state, engagement_row(event_type="watch", event_time=event_time, video_id="v",
                                               watch_ms=1_000, video_duration_ms=10_000))
    sink.build("redis", 0, 1).write_batch([("a", older), ("b", other), ("a", newer)])
    assert writer.batches == [{"a": evaluator.pack(newer), "b": evaluator.pack(other)}]
    assert sink.keys == {"a", "b"}
