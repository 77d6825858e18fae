"""The feed's assembly (fyp/feed/assemble.py, service.py, model.py) on plain data: a dict standing in for Redis, a
function for the index service's candidates, a small untrained ranker in a local object store."""

from __future__ import annotations

import struct
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from connectors.redis_video_store import video_key
from features.serving_sets import NOT_INTERESTED_AUTHORS, NOT_INTERESTED_VIDEOS, RECENT_SEEN
from fyp.experiments.spec import Arm, Experiment
from fyp.feed.assemble import CandidatesDown, FeedConfig, FeedRanker
from fyp.feed.model import RankerSlot
from fyp.feed.reads import VIDEO_PLAN, read_ranker_columns, set_columns
from fyp.feed.service import create_app
from fyp.index.snapshot import LocalObjectStore
from fyp.ranking.combine import DEFAULT_HEAD_WEIGHTS, combined_score
from fyp.ranking.inputs import InputSpec
from fyp.ranking.lake import ranker_sets
from fyp.ranking.store import save, serialize

NOW = 1_800_000_000_000
PREFIX = "models/ranker/"


class DictRedis:
    """The few commands the feed's reads send, over dicts; `pipeline()` queues them and `execute()` answers."""

    def __init__(self) -> None:
        self.strings: dict[str, bytes] = {}
        self.hashes: dict[str, dict[str, str]] = {}
        self.zsets: dict[str, dict[str, float]] = {}
        self._queue: list[Any] = []

    def pipeline(self, transaction: bool = False) -> DictRedis:
        pipe = DictRedis()
        pipe.strings, pipe.hashes, pipe.zsets = self.strings, self.hashes, self.zsets
        return pipe

    def zrange(self, key: str, start: int, end: int, withscores: bool = False) -> None:
        members = sorted(self.zsets.get(key, {}).items(), key=lambda ms: (ms[1], ms[0]))
        self._queue.append([(m.encode(), s) for m, s in members] if withscores else [m.encode() for m, _ in members])

    def hmget(self, key: str, fields: list[str]) -> None:
        found = self.hashes.get(key, {})
        self._queue.append([found[f].encode() if f in found else None for f in fields])

    def mget(self, keys: list[str]) -> None:
        self._queue.append([self.strings.get(k) for k in keys])

    def execute_command(self, name: str, key: str, *args: Any) -> None:
        """The raw commands of fyp.serving.roundtrip: replies as Redis sends them (flat WITHSCORES lists)."""
        if name == "MGET":
            self.mget([key, *args])
        elif name == "HMGET":
            self.hmget(key, list(args))
        elif name == "ZRANGE":
            members = sorted(self.zsets.get(key, {}).items(), key=lambda ms: (ms[1], ms[0]))
            withscores = "WITHSCORES" in args
            self._queue.append([x for m, s in members for x in ((m.encode(), str(s).encode()) if withscores
                                                                 else (m.encode(),))])
        else:
            raise NotImplementedError(name)

    def execute(self) -> list[Any]:
        replies, self._queue = self._queue, []
        return replies


def packed(plan, values: Mapping[str, float], *, event_time: int = NOW) -> bytes:
    row = np.zeros(len(plan.columns), dtype="<f4")
    for name, value in values.items():
        row[plan.columns.index(name)] = value
    return struct.pack("<qq", event_time, event_time) + row.tobytes()


def world() -> tuple[DictRedis, dict[str, Any]]:
    """20 videos v0..v19 by authors a0..a4, each with features; v19 removed. The index returns them all, with dots
    for the even ones."""
    redis = DictRedis()
    results = []
    for i in range(20):
        video = f"v{i}"
        redis.hashes[video_key(video)] = {"status": "removed" if i == 19 else "ready", "author_id": f"a{i % 5}",
                                          "hashtags": '["cats"]'}
        redis.strings[VIDEO_PLAN.feature_set.key_prefix + video] = packed(
            VIDEO_PLAN, {"plays_24h": 10 * i, "completions_24h": 5 * i, "plays_decay_24h": 10 * i})
        results.append({"video_id": video, "source": "exploration" if i == 7 else "trending", "score": 1.0,
                        "dot": (i / 20) if i % 2 == 0 else None})
    return redis, {"results": results, "sources": {"trending": {}}}


def fetch_from(body: dict[str, Any]):
    def fetch(user_id: str, k: int) -> dict[str, Any]:
        return {**body, "results": body["results"][:k]}
    return fetch


def ranker_store(tmp_path, seeds=(0,)) -> tuple[LocalObjectStore, list[str]]:
    """A local store holding one untrained ranker per seed, saved in order (LATEST: the last)."""
    import torch

    from fyp.ranking.model import MultiTaskRanker
    from fyp.ranking.runtime import to_onnx

    sets = ranker_sets()
    width = sum(len(c) for _, c in sets)
    spec = InputSpec(sets=tuple((n, tuple(c)) for n, c in sets), mean=(0.0,) * width, std=(1.0,) * width)
    store = LocalObjectStore(tmp_path)
    versions = []
    for second, seed in enumerate(seeds):
        torch.manual_seed(seed)
        onnx = to_onnx(MultiTaskRanker(spec.width), spec.width)
        version, data = serialize(onnx, {"spec": spec.to_json()}, now=datetime(2026, 12, 6, 0, 0, second, tzinfo=UTC))
        save(store, version, data, prefix=PREFIX)
        versions.append(version)
    return store, versions


def test_the_feed_reads_every_column_the_ranker_was_trained_on():
    for name, columns in ranker_sets():
        assert set_columns(name) == tuple(columns)


def test_no_model_falls_back_to_the_coarse_order_and_says_so():
    redis, body = world()
    redis.zsets[RECENT_SEEN.key_prefix + "u1"] = {"v18": 1.0}
    redis.zsets[NOT_INTERESTED_VIDEOS.key_prefix + "u1"] = {"v16": 1.0}
    redis.zsets[NOT_INTERESTED_AUTHORS.key_prefix + "u1"] = {"a4": 2.0, "a3": 1.0}  # a4: v4, v9, v14, v19
    ranker = FeedRanker(fetch_from(body), redis, RankerSlot(None), config=FeedConfig(coarse_k=10))
    feed = ranker.feed("u1", 5, now_ms=NOW)
    assert feed["model"] == {"version": None, "fallback": True, "reason": "no model store configured"}
    shown = [item["video_id"] for item in feed["items"]]
    assert not {"v18", "v16", "v19", "v4", "v9", "v14"} & set(shown)
    assert feed["filters"] == {"recent_seen": 1, "not_interested_video": 1, "status": 1, "not_interested_author": 3}
    assert feed["counts"] == {"candidates": 20, "filtered": 14, "coarse": 10, "feed": 5}
    assert all(item["fine"] is None and item["score"] == item["coarse"] for item in feed["items"])
    # The coarse score: the dot where known, else half the popularity (below every dot of 0.5 and up here).
    assert shown[0] == "v12" and feed["items"][0]["coarse"] == pytest.approx(0.6)
    assert set(feed["timings_ms"]) >= {"candidates", "filters", "coarse", "features", "fine", "rerank", "total"}


def test_a_loaded_model_scores_the_shortlist_with_the_weighted_heads(tmp_path):
    redis, body = world()
    store, (version,) = ranker_store(tmp_path)
    slot = RankerSlot(store, prefix=PREFIX)
    assert slot.reload()["version"] == version
    ranker = FeedRanker(fetch_from(body), redis, slot, config=FeedConfig(coarse_k=8))
    feed = ranker.feed("u1", 5, now_ms=NOW)
    assert feed["model"] == {"version": version, "fallback": False}
    assert feed["weights"] == dict(DEFAULT_HEAD_WEIGHTS) and feed["arms"] == []
    shortlist = sorted((item["coarse"], item["video_id"]) for item in feed["items"])
    # Each fine score is the ranker's weighted heads for that video, computed here again.
    records = [ranker_record(redis, v) for _, v in shortlist]
    columns = read_ranker_columns(redis, slot.current.set_names, "u1", records, now_ms=NOW)
    expected = combined_score(slot.current.runtime.predict(columns), DEFAULT_HEAD_WEIGHTS)
    by_id = {item["video_id"]: item["fine"] for item in feed["items"]}
    for (_, video), score in zip(shortlist, expected, strict=True):
        assert by_id[video] == pytest.approx(float(score), abs=1e-5)


def ranker_record(redis: DictRedis, video: str):
    from fyp.feed.reads import RECORD_FIELDS, _record

    fields = redis.hashes[video_key(video)]
    return _record(video, [fields.get(f, "").encode() or None for f in RECORD_FIELDS])


def test_arm_overrides_change_the_weights_and_the_arm_ids_are_returned(tmp_path):
    redis, body = world()
    store, _ = ranker_store(tmp_path)
    slot = RankerSlot(store, prefix=PREFIX)
    slot.reload()
    experiment = Experiment(name="share_weight", layer="ranking", traffic_percent=100, start_ms=0,
                            arms=(Arm(name="heavy", overrides={"ranker.weights.shared": 9.0}),
                                  Arm(name="heavier", overrides={"ranker.weights.shared": 12.0})))
    ranker = FeedRanker(fetch_from(body), redis, slot, experiments=[experiment],
                        config=FeedConfig(weights={**DEFAULT_HEAD_WEIGHTS, "liked": 3.0}))
    feed = ranker.feed("u1", 3, now_ms=NOW)
    shared = {"share_weight:heavy": 9.0, "share_weight:heavier": 12.0}
    assert len(feed["arms"]) == 1 and feed["arms"][0] in shared
    assert feed["weights"]["shared"] == shared[feed["arms"][0]]  # the arm's override
    assert feed["weights"]["liked"] == 3.0  # the configuration's, over the default


def test_a_reload_swaps_whole_versions_under_concurrent_requests(tmp_path):
    redis, body = world()
    store, (old, new) = ranker_store(tmp_path, seeds=(0, 1))
    slot = RankerSlot(store, wanted=old, prefix=PREFIX)
    slot.reload()
    ranker = FeedRanker(fetch_from(body), redis, slot, config=FeedConfig(coarse_k=10))
    # Each version's fine scores, computed with no swap going on.
    expected = {}
    for version in (old, new):
        slot.reload(version)
        expected[version] = {i["video_id"]: i["fine"] for i in ranker.feed("u1", 10, now_ms=NOW)["items"]}
    assert expected[old] != expected[new]
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            seen.append(ranker.feed("u1", 10, now_ms=NOW))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(6):
        slot.reload(old)
        slot.reload(new)
    stop.set()
    for thread in threads:
        thread.join()
    assert seen and slot.loads >= 12
    for feed in seen:  # every response is one version's, whole
        version = feed["model"]["version"]
        assert {i["video_id"]: i["fine"] for i in feed["items"]} == expected[version]


def test_a_failed_reload_keeps_the_served_version(tmp_path):
    store, (version,) = ranker_store(tmp_path)
    slot = RankerSlot(store, prefix=PREFIX)
    slot.reload()
    status = slot.reload("20990101T000000Z-deadbeef")
    assert status["version"] == version and "RankerNotFound" in status["error"]


def test_the_service_answers_cold_start_bad_input_and_a_missing_candidate_source(tmp_path):
    redis, body = world()
    no_embedding = {"results": [{**r, "dot": None} for r in body["results"]],
                    "sources": {"ann": {"error": "no embedding for user 'new'"}}}
    ranker = FeedRanker(fetch_from(no_embedding), redis, RankerSlot(None))
    with TestClient(create_app(ranker)) as client:
        response = client.get("/v1/feed", params={"user": "new", "n": 4})
        assert response.status_code == 200, response.text
        assert response.json()["cold_start"] is True and len(response.json()["items"]) == 4
        assert client.get("/v1/feed", params={"user": "new", "n": 0}).status_code == 422
        assert client.get("/v1/feed", params={"user": "x" * 129}).status_code == 422
        assert client.get("/v1/model").json()["version"] is None
        assert client.post("/v1/model/reload", params={"version": "bad"}).status_code == 422

    def down(user_id: str, k: int):
        raise CandidatesDown("index service at http://nowhere not reachable")

    with TestClient(create_app(FeedRanker(down, redis, RankerSlot(None)))) as client:
        response = client.get("/v1/feed", params={"user": "u1"})
        assert response.status_code == 503 and "not reachable" in response.json()["detail"]


@pytest.mark.parametrize(("user", "birth_date", "age", "sees_restricted"), [
    ("adult", "1990-01-01", "adult", True),
    ("minor", "2015-01-01", "minor", False),
    ("unknown", None, "unknown", False),
    ("garbled", "01/01/1990", "invalid", False),
])
def test_only_a_viewer_known_to_be_an_adult_sees_age_restricted_videos(user, birth_date, age, sees_restricted):
    from fyp.feed.profiles import profile_key

    redis, body = world()
    redis.hashes[video_key("v12")]["actions"] = '["AGE_RESTRICT", "MUTE_AUDIO"]'  # v12: the best coarse score
    redis.hashes[video_key("v10")]["verdict"] = "AGE_RESTRICT"  # a record written before `actions` existed
    if birth_date is not None:
        redis.hashes[profile_key(user)] = {"birth_date": birth_date}
    ranker = FeedRanker(fetch_from(body), redis, RankerSlot(None), config=FeedConfig(coarse_k=20))
    feed = ranker.feed(user, 15, now_ms=NOW)
    shown = {item["video_id"] for item in feed["items"]}
    assert feed["viewer"] == {"age": age}
    assert ({"v12", "v10"} <= shown) is sees_restricted
    assert sees_restricted or not {"v12", "v10"} & shown


def test_an_arm_scores_with_its_own_ranker_version_and_a_missing_one_falls_back(tmp_path):
    redis, body = world()
    store, (default, arm_version) = ranker_store(tmp_path, seeds=(0, 1))
    missing = "20261206T000009Z-deadbeef"  # a well-formed version that is not in the store
    slot = RankerSlot(store, wanted=default, prefix=PREFIX)
    slot.reload()
    experiment = Experiment(name="ranker_v", layer="ranking", traffic_percent=100, start_ms=0,
                            arms=(Arm(name="new", overrides={"ranker.model": arm_version}),
                                  Arm(name="gone", overrides={"ranker.model": missing})))
    ranker = FeedRanker(fetch_from(body), redis, slot, experiments=[experiment])
    plain = FeedRanker(fetch_from(body), redis, slot)
    assert slot.status()["pinned"][arm_version] == {"loaded": True, "error": None}
    assert slot.status()["pinned"][missing]["loaded"] is False
    seen = set()
    for i in range(40):
        user = f"u{i}"
        feed = ranker.feed(user, 5, now_ms=NOW)
        fine = {item["video_id"]: item["fine"] for item in feed["items"]}
        default_fine = {item["video_id"]: item["fine"] for item in plain.feed(user, 20, now_ms=NOW)["items"]}
        arm = feed["arms"][0]
        seen.add(arm)
        if arm == "ranker_v:new":
            assert feed["model"] == {"version": arm_version, "fallback": False}
            assert any(fine[v] != pytest.approx(default_fine[v], abs=1e-6) for v in fine if v in default_fine)
        else:
            assert feed["model"]["version"] == default and feed["model"]["arm_fallback"]["version"] == missing
            load_error = slot.status()["pinned"][missing]["error"]  # the store's answer for a missing file
            assert load_error and feed["model"]["arm_fallback"]["reason"] == load_error
            assert all(fine[v] == pytest.approx(default_fine[v], abs=1e-6) for v in fine if v in default_fine)
    assert seen == {"ranker_v:new", "ranker_v:gone"}


def test_the_pinned_versions_are_bounded(tmp_path):
    store, (version,) = ranker_store(tmp_path)
    slot = RankerSlot(store, prefix=PREFIX, max_pinned=2)
    slot.pin([version, "20261206T000009Z-deadbeef"])
    with pytest.raises(ValueError, match="at most 2"):
        slot.pin(["20261206T000010Z-deadbeef"])
    assert slot.pinned("20261206T000011Z-deadbeef") == (None, "not pinned, and 2 versions already are")
    assert slot.pinned("not a version")[0] is None
    with pytest.raises(ValueError, match="bad ranker version"):
        RankerSlot(store, prefix=PREFIX).pin(["../../etc"])


def test_a_version_asked_for_but_not_pinned_is_loaded_in_the_background(tmp_path):
    import time

    store, (version,) = ranker_store(tmp_path)
    slot = RankerSlot(store, prefix=PREFIX)
    assert slot.pinned(version) == (None, "loading")
    deadline = time.monotonic() + 60
    while slot.pinned(version)[0] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slot.pinned(version)[0].version == version


def test_the_shortlists_embeddings_reach_the_reranker_s_mmr():
    redis, body = world()
    rng = np.random.default_rng(0)
    vectors = {f"v{i}": rng.normal(size=16).astype("<f4") for i in range(20)}
    vectors["v16"] = vectors["v18"].copy()  # the two best coarse scores, the same video as far as MMR can tell
    asked: list[list[str]] = []

    def fetch_vectors(ids):
        asked.append(list(ids))
        return {v: vectors[v] for v in ids if v != "v0"}  # v0: not in the index

    config = FeedConfig(coarse_k=10)
    plain = FeedRanker(fetch_from(body), redis, RankerSlot(None), config=config).feed("u1", 5, now_ms=NOW)
    feed = FeedRanker(fetch_from(body), redis, RankerSlot(None), config=config,
                      vectors=fetch_vectors).feed("u1", 5, now_ms=NOW)
    assert [i["video_id"] for i in plain["items"]][:2] == ["v18", "v16"]  # score order
    assert feed["items"][0]["video_id"] == "v18" and feed["items"][1]["video_id"] != "v16"
    assert len(asked) == 1 and len(asked[0]) == 10 and feed["embeddings"] == {"found": 10 - ("v0" in asked[0])}
    assert "embeddings" in feed["timings_ms"]

    def down(ids):
        raise OSError("index service down")

    broken = FeedRanker(fetch_from(body), redis, RankerSlot(None), config=config,
                        vectors=down).feed("u1", 5, now_ms=NOW)
    assert broken["embeddings"] == {"found": 0, "error": "OSError: index service down"}
    assert [i["video_id"] for i in broken["items"]] == [i["video_id"] for i in plain["items"]]
