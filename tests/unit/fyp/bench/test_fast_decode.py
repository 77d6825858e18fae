"""fyp/bench/peers/fast_decode.py: the same rows as udfs.envelope.to_engagement_row, error reasons included, on
generated traffic (with its malformed events), on every record of tests/hostile_corpus.py, and on random bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fyp.bench.peers.fast_decode import FastDecoder
from fyp.traffic.config import TrafficConfig
from fyp.traffic.stream import TrafficGenerator
from schemas.registry import EVENT_TYPES, default_registry
from tests.hostile_corpus import FILLERS, hostile_cases
from udfs.envelope import to_engagement_row

NOW = 1_700_000_000_000
DECODE = FastDecoder()
CONTEXT = {"event_id": "0d7e3d38-0c2b-4c43-9f0a-000000000001", "event_time": NOW - 1_000, "user_id": "u1",
           "video_id": "v2", "author_id": "a3", "sound_id": None, "region": "BR", "language": "pt",
           "session_id": "sess-1", "hashtags": ["fyp", "dança"]}


def test_generated_traffic_decodes_as_the_reference():
    config = TrafficConfig(users=5_000, videos=10_000, malformed_fraction=0.02, late_fraction=0.05)
    generator = TrafficGenerator(config, 3, clock=lambda: NOW)
    payloads = [value for _, value in generator.next_batch(10_000).pairs]
    assert len(payloads) > 20_000
    # and with now_ms early enough that the events on time lie more than 5 minutes in its future, the late ones not
    for now_ms in (NOW, NOW - 301_000):
        rows = [to_engagement_row(p, now_ms) for p in payloads]
        assert [DECODE(p, now_ms) for p in payloads] == rows
        reasons = {r[-1].partition(":")[0] for r in rows if r[-1] is not None}
        assert len({r[0] for r in rows if r[-1] is None}) >= 8
        assert {"undecodable", "missing_id", "negative_duration"} <= reasons
    assert "future_timestamp" in reasons


@pytest.mark.parametrize("case", hostile_cases("fast"), ids=lambda c: c.name)
def test_hostile_corpus_gets_the_reference_row(case):
    payload = default_registry().encode(case.record_name, {**CONTEXT, **FILLERS[case.record_name], **case.fields})
    row = DECODE(payload, NOW)
    assert row == to_engagement_row(payload, NOW)
    assert row[-1] == case.reason


@pytest.mark.parametrize("payload", [None, b"", b"\x00", b"not avro", bytearray(b"\xc3\x01"), memoryview(b"xy"),
                                     b"\xc3\x01" + bytes(8) + b"\x00", 12])
def test_never_raises_on_what_is_not_a_payload(payload):
    assert DECODE(payload, NOW) == to_engagement_row(payload, NOW)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), record=st.sampled_from(default_registry().record_names))
def test_random_bodies_behind_every_header_decode_as_the_reference(body, record):
    payload = default_registry().latest(record).header + body
    assert DECODE(payload, NOW) == to_engagement_row(payload, NOW)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), event_type=st.sampled_from(EVENT_TYPES))
def test_corrupted_good_payloads_decode_as_the_reference(data, event_type):
    """Bytes flipped, cut or appended in a real payload of each type: mostly undecodable, sometimes still a record
    with odd values (a control character in an id, a negative duration), which the fast path must also refuse."""
    generator = TrafficGenerator(TrafficConfig(users=50, videos=50), data.draw(st.integers(0, 50)), clock=lambda: NOW)
    payloads = [v for _, v in generator.next_batch(30).pairs]
    payload = bytearray(data.draw(st.sampled_from(payloads)))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(10, len(payload) - 1))
        payload[position] = data.draw(st.integers(0, 255))
    payload = bytes(payload[: data.draw(st.integers(10, len(payload)))])
    assert DECODE(payload, NOW) == to_engagement_row(payload, NOW)
