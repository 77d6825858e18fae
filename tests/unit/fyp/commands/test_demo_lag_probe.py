"""`fyp demo`'s per-partition lag probe (fyp/commands/demo_training.py): the users' Redis values, grouped by the
engagement partition their events are on, give the newest event time the features job had applied there."""

from __future__ import annotations

import struct

from features import feature_set_for_entity
from fyp.commands.demo_training import applied_by_partition, probe_keys
from fyp.serving.layout import ReadPlan
from fyp.traffic.partitioner import kafka_partition
from schemas.topics import ENGAGEMENT

PLAN = ReadPlan.of(feature_set_for_entity("user"))
PREFIX = feature_set_for_entity("user").key_prefix


class FakeRedis:
    def __init__(self, values: dict[str, bytes]) -> None:
        self.values = values

    def mget(self, keys: list[str]) -> list[bytes | None]:
        return [self.values.get(k) for k in keys]


def packed(event_time_ms: int) -> bytes:
    return struct.pack("<qq", event_time_ms, event_time_ms + 5) + bytes(4 * len(PLAN.columns))


def test_each_user_is_probed_on_its_partition():
    users = [f"u{i}" for i in range(60)]
    probe = probe_keys(users)
    assert sorted(k for keys in probe.values() for k in keys) == sorted(PREFIX + u for u in users)
    assert all(kafka_partition(k[len(PREFIX):], ENGAGEMENT.partitions) == p for p, keys in probe.items() for k in keys)


def test_a_partitions_progress_is_the_newest_event_time_its_users_hold():
    users = [f"u{i}" for i in range(60)]
    probe = probe_keys(users)
    p, q = sorted(probe)[:2]
    first, second = probe[p][:2]
    values = {first: packed(1_000), second: packed(9_000), probe[q][0]: packed(4_000), "junk": packed(99_000)}
    assert applied_by_partition(FakeRedis(values), probe, 10_000) == {p: 9_000, q: 4_000}  # others hold nothing
    assert applied_by_partition(FakeRedis({}), {}, 10_000) == {}
