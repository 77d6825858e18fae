"""The user-embedding worker on plain data: which users are due, what it reads (the recent positives, newest
first, and the user's features), what it writes (the model's name with the vector), and following the model the
index serves."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from fyp.index.users import SERVED_MODEL_KEY, USER_EMBEDDING_KEY, decode_user_embedding
from workers.user_embeddings import RefreshConfig, UserEmbeddingRefresher, due_users


def test_due_users_are_active_and_changed_since_their_last_refresh():
    newest = {"fresh": 1_000.0, "unchanged": 900.0, "stale": 10.0, "new": 950.0}
    assert due_users(newest, {"unchanged": 900.0, "fresh": 800.0}, now_ms=1_000, active_within_ms=500) == [
        "fresh", "new"]


def test_refresh_config_is_checked():
    with pytest.raises(ValueError, match="positive"):
        RefreshConfig(ttl=timedelta(0))
    with pytest.raises(ValueError, match="history_len"):
        RefreshConfig(history_len=0)
    assert RefreshConfig().history_len == 50  # all RECENT_POSITIVES keeps


class PlainRedis:
    """The few Redis calls the refresher makes, over dicts (zsets: member -> score)."""

    def __init__(self, zsets, hashes, strings=None):
        self.zsets, self.hashes, self.strings = zsets, hashes, dict(strings or {})

    def scan_iter(self, match, count):
        return [k.encode() for k in self.zsets if k.startswith(match.rstrip("*"))]

    def get(self, key):
        value = self.strings.get(key)
        return value[0] if isinstance(value, tuple) else value

    def pipeline(self, transaction=False):
        return PlainPipeline(self)


class PlainPipeline:
    def __init__(self, redis):
        self.redis, self.calls = redis, []

    def _sorted(self, key):
        key = key.decode() if isinstance(key, bytes) else key
        return sorted(self.redis.zsets.get(key, {}).items(), key=lambda kv: kv[1])

    def zrange(self, key, start, end, withscores=False):
        items = self._sorted(key)
        stop = len(items) + end + 1 if end < 0 else end + 1
        first = max(len(items) + start, 0) if start < 0 else start
        self.calls.append([(m.encode(), s) for m, s in items[first:stop]])

    def zrevrange(self, key, start, end):
        items = self._sorted(key)[::-1]
        self.calls.append([m.encode() for m, _ in items[start:end + 1]])

    def hgetall(self, key):
        self.calls.append({k.encode(): v.encode() for k, v in self.redis.hashes.get(key, {}).items()})

    def set(self, key, value, ex):
        self.redis.strings[key] = (value, ex)
        self.calls.append(True)

    def execute(self):
        calls, self.calls = self.calls, []
        return calls


class Recording:
    """A user encoder: row = [videos with metadata, plays feature]; zero rows for empty histories."""

    def __init__(self, name="plain-users-v1", trained=False):
        self.name, self.trained, self.seen = name, trained, []

    def encode(self, histories, features):
        self.seen.append([h.video_ids for h in histories])
        rows = [[len(h.videos) or (len(h.video_ids) if self.trained else 0), f.values.get("plays_24h", 0.0)]
                for h, f in zip(histories, features, strict=True)]
        return np.array(rows, np.float32)


class Features:
    def __init__(self, plays=None):
        self.plays, self.asked = plays or {}, []

    def get(self, entity, entity_id):
        self.asked.append((entity, entity_id))
        if entity_id not in self.plays:
            return None
        from types import SimpleNamespace

        return SimpleNamespace(values={"plays_24h": self.plays[entity_id]})


NOW = 1_000_000.0


def world():
    zsets = {
        # Who is active: the recent-seen sets (impressions, skips, watches).
        "fyp:recent_seen:v1:u1": {"v1": NOW - 10, "skip1": NOW - 5},
        "fyp:recent_seen:v1:u2": {"x": NOW - 1},
        "fyp:recent_seen:v1:old": {"v1": NOW - 10 * 86_400_000},
        # What the tower reads: the recent positives.
        "fyp:recent_positives:v1:u1": {"v1": NOW - 30, "v2": NOW - 20},
    }
    hashes = {"fyp:video:v1:v1": {"video_id": "v1", "status": "ready", "caption": "cats"},
              "fyp:video:v1:skip1": {"video_id": "skip1", "status": "ready", "caption": "dogs"}}
    return zsets, hashes


def test_the_tower_reads_the_recent_positives_newest_first_and_the_features_not_the_seen_set():
    zsets, hashes = world()
    redis, users, features = PlainRedis(zsets, hashes), Recording(), Features({"u1": 4.0})
    refresher = UserEmbeddingRefresher(redis, features, users, RefreshConfig(ttl=timedelta(hours=1)))
    report = refresher.run_pass(now_ms=NOW)
    assert (report.scanned, report.due, report.written, report.no_embedding) == (3, 2, 1, 1)
    assert users.seen == [[("v2", "v1"), ()]]  # u1: positives newest first, the skip not among them; u2: none
    assert features.asked == [("user", "u1"), ("user", "u2")]
    value, ttl = redis.strings[USER_EMBEDDING_KEY.format(user_id="u1")]
    stored = decode_user_embedding(value)
    assert stored.model == "plain-users-v1" and stored.vector.tolist() == [1.0, 4.0] and ttl == 3600
    assert refresher.run_pass(now_ms=NOW).due == 0  # nothing new since
    zsets["fyp:recent_seen:v1:u1"]["v3"] = NOW
    assert refresher.run_pass(now_ms=NOW + 1).due == 1


def test_a_trained_model_reads_no_video_metadata():
    zsets, hashes = world()
    redis, users = PlainRedis(zsets, hashes), Recording(trained=True)
    report = UserEmbeddingRefresher(redis, Features(), users).run_pass(now_ms=NOW, only=["u1"])
    assert report.written == 1 and users.seen == [[("v2", "v1")]]
    assert decode_user_embedding(redis.strings[USER_EMBEDDING_KEY.format(user_id="u1")][0]).vector[0] == 2.0


def test_after_a_swap_the_worker_loads_the_served_model_and_re_encodes_every_active_user():
    zsets, hashes = world()
    redis = PlainRedis(zsets, hashes, {SERVED_MODEL_KEY.format(name="videos"): b"plain-users-v1"})
    loaded = []

    def encoder_for(name):
        loaded.append(name)
        if name == "missing-model":
            raise LookupError("not here")
        return Recording(name=name)

    refresher = UserEmbeddingRefresher(redis, Features(), Recording(), RefreshConfig(), encoder_for=encoder_for)
    assert refresher.run_pass(now_ms=NOW).written == 1 and loaded == []  # the served model already
    assert refresher.run_pass(now_ms=NOW).due == 0

    redis.strings[SERVED_MODEL_KEY.format(name="videos")] = b"two-tower-new"
    report = refresher.run_pass(now_ms=NOW)
    assert loaded == ["two-tower-new"] and report.model == "two-tower-new" and report.due == 2
    assert decode_user_embedding(redis.strings[USER_EMBEDDING_KEY.format(user_id="u1")][0]).model == "two-tower-new"

    redis.strings[SERVED_MODEL_KEY.format(name="videos")] = b"missing-model"  # logged; keeps encoding
    assert refresher.run_pass(now_ms=NOW).model == "two-tower-new"


def test_without_an_index_to_follow_the_model_never_changes():
    zsets, hashes = world()
    redis = PlainRedis(zsets, hashes, {SERVED_MODEL_KEY.format(name="videos"): b"two-tower-new"})
    refresher = UserEmbeddingRefresher(redis, Features(), Recording(), RefreshConfig(index=None),
                                       encoder_for=lambda name: pytest.fail("must not load"))
    assert refresher.run_pass(now_ms=NOW).model == "plain-users-v1"
