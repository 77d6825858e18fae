"""Uploads to the index on the real stack: upload API -> upload_orchestration -> transcoder and moderator workers
-> video_embeddings job -> index service -> /v1/similar and /v1/candidates; then a takedown removes the video.

Runs after test_upload_pipeline.py (file order): the orchestration job it submitted is reused. Two clips are
uploaded at once, so each has a neighbour to be found next to. Prints the approval -> searchable latency (the
`status:ready` record's Kafka timestamp to the first 200 from /v1/similar).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from confluent_kafka import Consumer

from connectors.kafka_emitter import KafkaEmitter
from connectors.redis_video_store import FRESH_VIDEOS_KEY
from features.serving_sets import RECENT_POSITIVES, RECENT_SEEN
from fyp.index.users import USER_EMBEDDING_KEY
from fyp.uploads.client import HttpUploads, upload_file
from schemas.registry import default_registry
from schemas.topics import VIDEO_STATUS
from tests.integration.conftest import eventually, uploads_and_index
from tests.integration.test_upload_pipeline import _make_video

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def stack(settings, running_job, tmp_path_factory):
    """The jobs, the workers, the upload API and an index service of its own (a fresh index name)."""
    logs = tmp_path_factory.mktemp("embedding-pipeline-logs")
    with uploads_and_index(settings, running_job, logs, "it-emb") as parts:
        yield parts


def _ready_at(settings, video_id: str, timeout_s: float = 20) -> int:
    """The Kafka timestamp (ms) of the video's `ready` status record."""
    registry = default_registry()
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"it-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([VIDEO_STATUS.name])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or msg.key() != video_id.encode():
                continue
            if registry.decode(msg.value()).record["status"] == "ready":
                return msg.timestamp()[1]
    finally:
        consumer.close()
    pytest.fail(f"no ready status record for {video_id}")


@pytest.fixture(scope="module")
def two_videos(settings, stack, tmp_path_factory) -> dict[str, Any]:
    """Two clips about the same thing, uploaded at once and followed until searchable."""
    folder = tmp_path_factory.mktemp("embedding-uploads")
    metadata = [
        {"author_id": "it_emb_author", "caption": "kitten plays the piano", "hashtags": ["kitten", "piano"],
         "region": "US", "language": "en"},
        {"author_id": "it_emb_other", "caption": "a kitten playing piano again", "hashtags": ["kitten", "music"],
         "region": "US", "language": "en"},
    ]
    sources = [_make_video(folder / f"clip{i}.mp4") for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda a: upload_file(a[0], a[1], HttpUploads(stack["api"])),
                             zip(sources, metadata, strict=True)))
    ids = [d["video_id"] for d in done]
    store, index = stack["store"], stack["index"]

    searchable_at: dict[str, int] = {}
    statuses: dict[str, str | None] = {}

    def progress() -> bool:
        """Follow both videos to a final status and, once ready, into the index (one loop, so each video's
        searchable time is seen within ~0.1 s however long the other one takes)."""
        stack["workers"].check_alive()
        for v in ids:
            statuses[v] = (store.read(v) or {}).get("status")
            if statuses[v] == "ready" and v not in searchable_at \
                    and index.get(f"/v1/similar/{v}", params={"k": 1}).status_code == 200:
                searchable_at[v] = int(time.time() * 1000)
        final = all(s in ("ready", "rejected", "failed", "removed") for s in statuses.values())
        return final and all(v in searchable_at for v in ids if statuses[v] == "ready")

    eventually(progress, timeout_s=READY_TIMEOUT_S + 30, interval_s=0.05, message="both uploads final, ready ones "
               "searchable")
    assert list(statuses.values()) == ["ready", "ready"], f"{statuses}\n{stack['workers'].tail('moderator')}"
    latencies = {v: searchable_at[v] - _ready_at(settings, v) for v in ids}
    print(f"\napproval (status ready record) -> searchable: {latencies} ms")
    return {"ids": ids, "metadata": metadata}


def test_approved_uploads_are_similar_to_each_other(settings, stack, two_videos, redis_client) -> None:
    first, second = two_videos["ids"]
    index = stack["index"]
    found = [r["video_id"] for r in index.get(f"/v1/similar/{first}", params={"k": 50}).json()["results"]]
    assert second in found
    stats = index.get("/v1/stats").json()["feed"]
    assert stats["rejected"] == {} or "bad_vector" not in stats["rejected"], stats["rejected"]
    # The job also put both into the fresh pool and the authors' lists; the OCR-less text came from the hash.
    assert redis_client.zscore(FRESH_VIDEOS_KEY, first) is not None
    assert redis_client.zscore("fyp:author_videos:v1:it_emb_author", first) is not None


def test_candidates_name_their_sources_and_skip_seen_videos(settings, stack, two_videos, redis_client) -> None:
    from fyp.embeddings import load_encoders
    from fyp.serving import FeatureClient
    from workers.user_embeddings import UserEmbeddingRefresher

    first, second = two_videos["ids"]
    user = f"it-user-{uuid.uuid4().hex[:8]}"
    seen_key, positives_key = RECENT_SEEN.key_prefix + user, RECENT_POSITIVES.key_prefix + user
    # The user has seen and completed `second` (the features job writes both sets; here the test does): the
    # tower reads the positives, candidate generation filters the seen ones.
    redis_client.zadd(seen_key, {second: time.time() * 1000})
    redis_client.zadd(positives_key, {second: time.time() * 1000})
    try:
        _, users = load_encoders("local")
        report = UserEmbeddingRefresher(redis_client, FeatureClient(redis_client), users).run_pass(only=[user])
        assert report.written == 1, report
        assert redis_client.ttl(USER_EMBEDDING_KEY.format(user_id=user)) > 0
        nearest = stack["index"].get("/v1/candidates", params={"user": user, "k": 10, "sources": "ann"}).json()
        assert first in [r["video_id"] for r in nearest["results"]]  # near what the user watched
        body = stack["index"].get("/v1/candidates", params={"user": user, "k": 20}).json()
        sources = {r["video_id"]: r["source"] for r in body["results"]}
        assert second not in sources  # recently seen
        # ANN or exploration (the newest videos), whichever reached it first in the round robin.
        assert sources.get(first) in ("ann", "exploration"), body
        assert body["sources"]["ann"]["taken"] >= 1 and body["filters"]["recent_seen"] == 1
    finally:
        redis_client.delete(seen_key, positives_key, USER_EMBEDDING_KEY.format(user_id=user))


def test_takedown_removes_the_video_from_the_index(settings, stack, two_videos, redis_client) -> None:
    first, second = two_videos["ids"]
    index = stack["index"]
    started = time.monotonic()
    KafkaEmitter(settings).emit("Takedown", {
        "event_id": str(uuid.uuid4()), "event_time": int(time.time() * 1000), "video_id": first,
        "author_id": "it_emb_author", "reason": "dmca", "notice_id": "IT-EMB-1"})
    eventually(lambda: index.get(f"/v1/similar/{first}").status_code == 404, timeout_s=30, interval_s=0.05,
               message="taken-down video gone from the index")
    print(f"\ntakedown -> gone from the index {time.monotonic() - started:.2f} s")
    found = [r["video_id"] for r in index.get(f"/v1/similar/{second}", params={"k": 50}).json()["results"]]
    assert first not in found
    assert redis_client.zscore(FRESH_VIDEOS_KEY, first) is None
    body = index.get("/v1/candidates", params={"user": f"it-nobody-{uuid.uuid4().hex[:6]}", "k": 50}).json()
    assert first not in {r["video_id"] for r in body["results"]}


def test_candidate_sets_from_the_iceberg_history(settings, redis_client) -> None:
    """`fyp worker candidate-sets` on rows appended to the real history table, on a day of their own."""
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa

    from connectors.iceberg_tables import catalog, ensure_tables
    from fyp.candidates.history_sets import HistorySetsConfig, refresh
    from fyp.candidates.sources import COWATCH_KEY
    from schemas.tables import ENGAGEMENT_HISTORY

    ensure_tables(settings)
    history = catalog(settings).load_table(ENGAGEMENT_HISTORY)
    day = datetime(2025, 6, 1, tzinfo=UTC)
    run = uuid.uuid4().hex[:6]
    users, videos = [f"cs-{run}-u{i}" for i in range(3)], [f"cs-{run}-v{i}" for i in range(2)]
    base = {"author_id": f"cs-{run}-a", "region": "DE", "language": "de", "session_id": "s"}
    rows = [{"event_type": "watch", "event_id": str(uuid.uuid4()), "event_time": day + timedelta(minutes=i + j),
             "user_id": u, "video_id": v, "watch_ms": 9_000, "video_duration_ms": 10_000, **base}
            for i, u in enumerate(users) for j, v in enumerate(videos)]
    rows.append({"event_type": "follow", "event_id": str(uuid.uuid4()), "event_time": day + timedelta(hours=1),
                 "user_id": users[0], "video_id": videos[0], "action": "FOLLOW", **base})
    history.append(pa.Table.from_pylist(rows, schema=history.schema().as_arrow()))
    keys = [COWATCH_KEY.format(video_id=v) for v in videos]
    try:
        report = refresh(settings, redis_client, HistorySetsConfig(lookback=timedelta(days=1)),
                         now_ms=int((day + timedelta(hours=2)).timestamp() * 1000))
        assert report.events >= len(rows)
        strength = redis_client.zscore(COWATCH_KEY.format(video_id=videos[0]), videos[1])
        assert strength == pytest.approx(1.0)  # all three users watched both: 3 / sqrt(3 * 3)
        assert not redis_client.exists("fyp:follows:v1:" + users[0])  # follows: jobs/follow_graph.py, not here
        assert 0 < redis_client.ttl(COWATCH_KEY.format(video_id=videos[0])) <= 2 * 86400
    finally:
        redis_client.delete(*keys)
