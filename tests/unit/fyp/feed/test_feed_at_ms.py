"""`/v1/feed?at_ms=T` (fyp/feed/service.py), the debug parameter `fyp bench feed-loop` compares fine scores with: the
features are read as of T, so two reads of unchanged Redis score alike, and only a write moves a score."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from fyp.feed.assemble import FeedConfig, FeedRanker
from fyp.feed.model import RankerSlot
from fyp.feed.reads import VIDEO_PLAN
from fyp.feed.service import MAX_AT_SKEW_MS, create_app
from tests.unit.fyp.feed.test_feed_assembly import PREFIX, fetch_from, packed, ranker_store, world

HOUR_MS = 3_600_000


def test_at_ms_pins_the_read_time_and_only_a_write_moves_the_scores(tmp_path):
    redis, body = world()
    now = int(time.time() * 1000)
    for i in range(20):  # features written just now, so that the decay over an hour shows in the scores
        redis.strings[VIDEO_PLAN.feature_set.key_prefix + f"v{i}"] = packed(
            VIDEO_PLAN, {"plays_24h": 10 * i, "completions_24h": 5 * i, "plays_decay_24h": 10 * i,
                         "plays_decay_30m": 10 * i}, event_time=now)
    store, _ = ranker_store(tmp_path)
    slot = RankerSlot(store, prefix=PREFIX)
    slot.reload()
    ranker = FeedRanker(fetch_from(body), redis, slot, config=FeedConfig(coarse_k=8))

    def scores(at_ms: int) -> dict[str, float]:
        response = client.get("/v1/feed", params={"user": "u1", "n": 8, "at_ms": at_ms})
        assert response.status_code == 200, response.text
        return {item["video_id"]: item["fine"] for item in response.json()["items"]}

    with TestClient(create_app(ranker)) as client:
        first = scores(now)
        assert first and scores(now) == first
        later = scores(now + HOUR_MS)  # the decayed columns have lost half and more
        assert any(later[v] != first[v] for v in first.keys() & later.keys())
        video = next(iter(first))
        redis.strings[VIDEO_PLAN.feature_set.key_prefix + video] = packed(
            VIDEO_PLAN, {"plays_24h": 5_000, "completions_24h": 4_000, "plays_decay_24h": 5_000}, event_time=now)
        assert scores(now)[video] != first[video]
        for far in (now - MAX_AT_SKEW_MS - 60_000, now + MAX_AT_SKEW_MS + 60_000, -1):
            assert client.get("/v1/feed", params={"user": "u1", "at_ms": far}).status_code == 422
