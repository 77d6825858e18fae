"""udfs/envelope.py: every event type becomes a row, every bad event becomes an error row."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import udfs.envelope as envelope
from schemas.registry import EVENT_TYPES, default_registry
from tests.hostile_corpus import FILLERS, hostile_cases
from udfs.envelope import ENGAGEMENT_ROW_FIELDS, to_engagement_row

NOW = 1_700_000_000_000
NAMES = [name for name, _ in ENGAGEMENT_ROW_FIELDS]
DETAIL_FIELDS = ("watch_ms", "video_duration_ms", "dwell_ms", "loop_count", "action", "comment_text")

CONTEXT = {
    "event_id": "0d7e3d38-0c2b-4c43-9f0a-000000000001",
    "event_time": NOW - 1_000,
    "user_id": "u1",
    "video_id": "v2",
    "author_id": "a3",
    "sound_id": None,
    "region": "BR",
    "language": "pt",
    "session_id": "sess-1",
    "hashtags": ["fyp", "dança"],
}

# event type: (record name, its own fields, what the row's detail fields hold)
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "impression": ("Impression", {"position": 3, "surface": "for_you"}, {}),
    "watch": (
        "Watch",
        {"watch_ms": 9_000, "video_duration_ms": 15_000},
        {"watch_ms": 9_000, "video_duration_ms": 15_000},
    ),
    "loop": (
        "Loop",
        {"loop_count": 2, "video_duration_ms": 15_000},
        {"loop_count": 2, "video_duration_ms": 15_000},
    ),
    "skip": (
        "Skip",
        {"dwell_ms": 700, "video_duration_ms": 15_000},
        {"dwell_ms": 700, "video_duration_ms": 15_000},
    ),
    "like": ("Like", {"action": "UNLIKE"}, {"action": "UNLIKE"}),
    "share": ("Share", {"channel": "whatsapp"}, {"action": "whatsapp"}),
    "save": ("Save", {}, {}),
    "follow": ("Follow", {"action": "FOLLOW"}, {"action": "FOLLOW"}),
    "comment": ("Comment", {"comment_id": "c1", "text": "🔥 top"}, {"comment_text": "🔥 top"}),
    "sound_engagement": ("SoundEngagement", {"action": "USE_SOUND"}, {"action": "USE_SOUND"}),
    "not_interested": ("NotInterested", {"reason": "seen_too_often"}, {"action": "seen_too_often"}),
}


def _payload(event_type: str, **overrides: Any) -> bytes:
    record_name, fields, _ = CASES[event_type]
    return default_registry().encode(record_name, {**CONTEXT, **fields, **overrides})


def _row(payload: bytes | None, **kwargs: Any) -> dict[str, Any]:
    values = to_engagement_row(payload, NOW, **kwargs)  # type: ignore[arg-type]
    assert isinstance(values, tuple) and len(values) == len(NAMES)
    return dict(zip(NAMES, values, strict=True))


def test_row_fields_are_the_contract() -> None:
    # schema_version and loop_count are BIGINT, not INT: PyFlink's thread mode fails on a null INT.
    assert ENGAGEMENT_ROW_FIELDS == (
        ("event_type", "STRING"), ("event_id", "STRING"), ("event_time", "BIGINT"),
        ("schema_version", "BIGINT"), ("user_id", "STRING"), ("video_id", "STRING"), ("author_id", "STRING"),
        ("sound_id", "STRING"), ("region", "STRING"), ("language", "STRING"), ("session_id", "STRING"),
        ("hashtags", "ARRAY<STRING>"), ("watch_ms", "BIGINT"), ("video_duration_ms", "BIGINT"),
        ("dwell_ms", "BIGINT"), ("loop_count", "BIGINT"), ("action", "STRING"), ("comment_text", "STRING"),
        ("arms", "ARRAY<STRING>"), ("error", "STRING"),
    )  # fmt: skip


def test_every_event_type_has_a_case() -> None:
    assert set(CASES) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_each_event_type_becomes_a_good_row(event_type: str) -> None:
    row = _row(_payload(event_type))
    expected_details = CASES[event_type][2]
    assert row["error"] is None
    assert row["event_type"] == event_type
    assert row["schema_version"] == default_registry().latest(CASES[event_type][0]).version
    assert {k: row[k] for k in CONTEXT} == CONTEXT
    assert {k: row[k] for k in DETAIL_FIELDS} == {k: expected_details.get(k) for k in DETAIL_FIELDS}
    assert row["arms"] == []  # no arms given; every type but Impression has none


def test_an_impression_carries_its_arms_and_an_old_one_has_none() -> None:
    arms = ["ranker_v2:treatment", "feed_ui:control"]
    row = _row(_payload("impression", arms=arms))
    assert (row["error"], row["schema_version"], row["arms"]) == (None, 2, arms)
    old = default_registry().encode("Impression", {**CONTEXT, **CASES["impression"][1]}, version=1)
    assert (_row(old)["error"], _row(old)["schema_version"], _row(old)["arms"]) == (None, 1, [])
    assert _row(_payload("impression", arms=["ranker_v2"]))["error"] == "bad_arm:arms"


def test_nullable_action_of_not_interested_stays_none() -> None:
    row = _row(_payload("not_interested", reason=None))
    assert (row["error"], row["action"]) == (None, None)


def _with_fingerprint_of(record_name: str, payload: bytes) -> bytes:
    return default_registry().latest(record_name).header + payload[10:]


ERRORS = {
    "none": (None, "undecodable:too_short"),
    "empty": (b"", "undecodable:too_short"),
    "bad-marker": (b"\x00\x01garbage-garbage", "undecodable:bad_marker"),
    "unknown-fingerprint": (b"\xc3\x01" + bytes(8) + b"\x00", "undecodable:unknown_fingerprint"),
    "truncated": (_payload("watch")[:-3], "undecodable:truncated_body"),
    "corrupt": (_payload("watch") + b"\x01", "undecodable:corrupt_body"),
    "not-engagement": (
        default_registry().encode(
            "Takedown",
            {
                "event_id": "e",
                "event_time": NOW,
                "video_id": "v",
                "author_id": "a",
                "reason": "dmca",
                "notice_id": "n",
            },
        ),
        "unknown_type:Takedown",
    ),
    "missing-event-id": (_payload("like", event_id=""), "missing_id:event_id"),
    "missing-user-id": (_payload("like", user_id=""), "missing_id:user_id"),
    "missing-video-id": (_payload("save", video_id=""), "missing_id:video_id"),
    "missing-ids-first-wins": (_payload("save", user_id="", video_id=""), "missing_id:user_id"),
    "negative-watch": (_payload("watch", watch_ms=-1), "negative_duration:watch_ms"),
    "negative-duration": (_payload("loop", video_duration_ms=-5), "negative_duration:video_duration_ms"),
    "negative-dwell": (_payload("skip", dwell_ms=-300), "negative_duration:dwell_ms"),
    "future": (_payload("impression", event_time=NOW + 300_001), "future_timestamp"),
}


@pytest.mark.parametrize(("payload", "error"), ERRORS.values(), ids=ERRORS.keys())
def test_bad_events_become_error_rows(payload: bytes | None, error: str) -> None:
    row = _row(payload)
    assert row["error"] == error
    if error.startswith(("undecodable", "unknown_type")):
        assert all(v is None for k, v in row.items() if k != "error")
    else:  # decoded: what could be read is kept for the dead-letter record
        assert row["event_type"] in EVENT_TYPES and row["author_id"] == "a3"


def test_future_bound_is_inclusive_and_configurable() -> None:
    assert _row(_payload("impression", event_time=NOW + 300_000))["error"] is None
    assert _row(_payload("impression", event_time=NOW + 2), max_future_ms=1)["error"] == "future_timestamp"
    assert _row(_payload("impression", event_time=0))["error"] is None  # late is not an error here


def test_an_internal_failure_still_gives_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(envelope, "default_registry", broken)
    assert _row(_payload("watch"))["error"] == "undecodable:internal:RuntimeError"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_never_raises_on_random_bytes(data: bytes) -> None:
    assert _row(data)["error"].startswith("undecodable:")


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=150), event_type=st.sampled_from(EVENT_TYPES))
def test_never_raises_on_random_bodies_behind_a_valid_header(body: bytes, event_type: str) -> None:
    payload = _with_fingerprint_of(CASES[event_type][0], b"\x00" * 10 + body)
    row = _row(payload)
    assert row["error"] is None or isinstance(row["error"], str)


@pytest.mark.parametrize("case", hostile_cases("unit"), ids=lambda c: c.name)
def test_every_field_contract_is_enforced_with_a_reason_naming_the_field(case):
    payload = default_registry().encode(case.record_name, {**CONTEXT, **FILLERS[case.record_name], **case.fields})
    assert _row(payload)["error"] == case.reason


def test_a_client_clock_ahead_cannot_make_another_clients_events_late():
    from udfs.lateness import LatenessGate
    gate = LatenessGate(allowed_lateness_ms=120_000)
    assert gate.admit(0, NOW + 240_000, now_ms=NOW)  # four minutes ahead: accepted, within the skew
    assert all(gate.admit(0, NOW - i * 1_000, now_ms=NOW) for i in range(60))  # other clients, on time
    assert not gate.admit(0, NOW - 121_000, now_ms=NOW)  # lateness itself still applies
    # Without the cap (replay of history), the same future event would have made them late.
    uncapped = LatenessGate(allowed_lateness_ms=120_000)
    uncapped.admit(0, NOW + 240_000)
    assert not uncapped.admit(0, NOW - 1_000)
