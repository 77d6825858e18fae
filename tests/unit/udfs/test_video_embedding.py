"""The embedding job's decisions without Flink: status -> action, batch planning against the Redis hash,
the VideoEmbedding record, the batch policy; and the user-embedding worker's choice of users."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
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
from workers.user_embeddings import RefreshConfig, due_users


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


def test_due_users_are_active_and_changed_since_their_last_refresh():
    newest = {"fresh": 1_000.0, "unchanged": 900.0, "stale": 10.0, "new": 950.0}
    assert due_users(newest, {"unchanged": 900.0, "fresh": 800.0}, now_ms=1_000, active_within_ms=500) == [
        "fresh", "new"]


def test_refresh_config_is_checked():
    with pytest.raises(ValueError, match="positive"):
        RefreshConfig(ttl=timedelta(0))
    with pytest.raises(ValueError, match="history_len"):
        RefreshConfig(history_len=0)


class PlainRedis:
    """The few Redis calls the refresher makes, over dicts (zsets: member -> score)."""

    def __init__(self, zsets, hashes):
        self.zsets, self.hashes, self.strings = zsets, hashes, {}

    def scan_iter(self, match, count):
        return [k.encode() for k in self.zsets if k.startswith(match.rstrip("*"))]

    def pipeline(self, transaction=False):
        return PlainPipeline(self)


class PlainPipeline:
    def __init__(self, redis):
        self.redis, self.calls = redis, []

    def zrange(self, key, start, end, withscores=False):
        key = key.decode() if isinstance(key, bytes) else key
        items = sorted(self.redis.zsets.get(key, {}).items(), key=lambda kv: kv[1])
        stop = len(items) + end + 1 if end < 0 else end + 1
        first = max(len(items) + start, 0) if start < 0 else start
        self.calls.append([(m.encode(), s) for m, s in items[first:stop]])

    def hgetall(self, key):
        self.calls.append({k.encode(): v.encode() for k, v in self.redis.hashes.get(key, {}).items()})

    def set(self, key, value, ex):
        self.redis.strings[key] = (value, ex)
        self.calls.append(True)

    def execute(self):
        calls, self.calls = self.calls, []
        return calls


class MeanOfHistory:
    """A user encoder: row = [number of videos with metadata, plays feature]; zero rows for empty histories."""

    name = "plain-users-v1"

    def __init__(self):
        self.seen = []

    def encode(self, histories, features):
        self.seen.append([h.video_ids for h in histories])
        return np.array([[len(h.videos), f.plays] for h, f in zip(histories, features, strict=True)], np.float32)


class NoFeatures:
    def get(self, entity, entity_id):
        return None


def test_refresher_writes_active_users_once_and_skips_unknown_histories():
    from fyp.index.users import USER_EMBEDDING_KEY
    from workers.user_embeddings import UserEmbeddingRefresher

    now = 1_000_000.0
    zsets = {"fyp:recent_seen:v1:u1": {"v1": now - 10, "v2": now - 5}, "fyp:recent_seen:v1:u2": {"x": now - 1},
             "fyp:recent_seen:v1:old": {"v1": now - 10 * 86_400_000}}
    hashes = {"fyp:video:v1:v1": {"video_id": "v1", "status": "ready", "caption": "cats"}}
    redis, users = PlainRedis(zsets, hashes), MeanOfHistory()
    refresher = UserEmbeddingRefresher(redis, NoFeatures(), users, RefreshConfig(ttl=timedelta(hours=1)))
    report = refresher.run_pass(now_ms=now)
    assert (report.scanned, report.due, report.written, report.no_embedding) == (3, 2, 1, 1)
    value, ttl = redis.strings[USER_EMBEDDING_KEY.format(user_id="u1")]
    assert np.frombuffer(value, "<f4").tolist() == [1.0, 0.0] and ttl == 3600
    assert users.seen == [[("v1", "v2"), ("x",)]]  # oldest first
    assert refresher.run_pass(now_ms=now).due == 0  # nothing new since
    zsets["fyp:recent_seen:v1:u1"]["v3"] = now
    assert refresher.run_pass(now_ms=now + 1).due == 1
