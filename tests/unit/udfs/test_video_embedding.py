"""The embedding job's decisions without Flink: status -> action, batch planning against the Redis hash,
the VideoEmbedding record, the batch policy. (The user-embedding worker's tests: tests/unit/workers.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.registry import default_registry
from udfs.video_embedding import (
    BatchPolicy,
    Planned,
    StatusChange,
    action_for,
    decode_status_change,
    embedding_record,
    plan_batch,
)


def change(video_id: str, status: str, t: int = 1, author: str = "a1") -> StatusChange:
    return StatusChange(video_id=video_id, author_id=author, status=status, event_time_ms=t)


@pytest.mark.parametrize(("status", "action"), [
    ("ready", "upsert"), ("removed", "delete"), ("rejected", "delete"), ("failed", "delete"),
    ("uploaded", None), ("transcoding", None), ("moderating", None), ("live", None),
])
def test_action_for_each_status(status, action):
    assert action_for(status) == action


def test_decode_keeps_only_status_changes_that_ask_for_something():
    registry = default_registry()

    def status(s: str) -> bytes:
        return registry.encode("VideoStatusChanged", {"event_id": "e", "event_time": 9, "video_id": "v1",
                                                      "author_id": "a1", "status": s, "reason": None})

    assert decode_status_change(status("removed")) == change("v1", "removed", 9)
    assert decode_status_change(status("moderating")) is None
    assert decode_status_change(None) is None and decode_status_change(b"\x00junk") is None
    takedown = registry.encode("Takedown", {"event_id": "e", "event_time": 1, "video_id": "v1", "author_id": "a",
                                            "reason": "dmca", "notice_id": "n"})
    assert decode_status_change(takedown) is None


def test_plan_upserts_ready_videos_with_their_hash():
    planned = plan_batch([change("v1", "ready")], {"v1": {"status": "ready", "caption": "cats", "ocr_text": "hi"}})
    assert planned == [Planned(video_id="v1", author_id="a1", action="upsert", event_time_ms=1,
                               fields={"status": "ready", "caption": "cats", "ocr_text": "hi"})]


def test_the_hash_wins_over_a_stale_ready():
    planned = plan_batch([change("v1", "ready")], {"v1": {"status": "removed"}})
    assert [(p.action, dict(p.fields)) for p in planned] == [("delete", {})]


def test_ready_without_metadata_or_in_an_unrelated_status_is_skipped():
    assert plan_batch([change("v1", "ready"), change("v2", "ready")], {"v2": {"status": "moderating"}}) == []


def test_last_change_per_video_wins_and_order_follows_it():
    changes = [change("v1", "ready", 1), change("v2", "ready", 2), change("v1", "removed", 3)]
    planned = plan_batch(changes, {"v1": {"status": "removed"}, "v2": {"status": "ready"}})
    assert [(p.video_id, p.action, p.event_time_ms) for p in planned] == [("v2", "upsert", 2), ("v1", "delete", 3)]


def test_deletes_need_no_hash_and_keep_the_author():
    planned = plan_batch([change("v9", "rejected", author="")], {"v9": {"status": "rejected", "author_id": "a7"}})
    assert [(p.action, p.author_id) for p in planned] == [("delete", "a7")]


def test_embedding_record_round_trips_through_the_schema():
    item = Planned(video_id="v1", author_id="a1", action="upsert", event_time_ms=5, fields={})
    record = embedding_record(item, model="m1", vector=[0.5, -0.25])
    decoded = default_registry().decode(default_registry().encode("VideoEmbedding", record)).record
    assert decoded["vector"] == [0.5, -0.25] and decoded["deleted"] is False and decoded["model"] == "m1"
    assert embedding_record(item, model="m1", vector=[0.5, -0.25])["event_id"] == record["event_id"]  # replay-safe
    with pytest.raises(ValueError, match="needs a vector"):
        embedding_record(item, model="m1", vector=None)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"max_items": 0}, "max_items"), ({"max_items": 5000}, "max_items"),
    ({"max_wait": timedelta(seconds=-1)}, "max_wait"), ({"max_wait": timedelta(minutes=1)}, "max_wait"),
])
def test_batch_policy_bounds(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchPolicy(**kwargs)
