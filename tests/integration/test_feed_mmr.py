"""The reranker's MMR on the real stack, with video embeddings: the index service replays this test's vectors from
Kafka, answers `/v1/candidates` (ANN over a user embedding in Redis) and the feed's `/v1/vectors` call, and the
feed spreads near-duplicates that, without the embeddings, would fill its first positions in score order.

The world, in 64 dimensions (u: the user's direction, unit vectors throughout):
- 4 near-duplicates along e1, the best scores (cosine with u 0.485), 0.98 similar to each other;
- 4 distinct videos along e2..e5, slightly lower (0.445), orthogonal to the duplicates and to each other;
- 4 fillers (0.3), so the min-max scaled relevance of the distinct four is ~0.78, not 0.
With MMR's default lambda 0.7, after one duplicate the next scores 0.7 x ~0.97 - 0.3 x 0.98 ~ 0.39 and a distinct
video 0.7 x ~0.78 - 0 ~ 0.55: the distinct four come next. Every video has its own author and no sound, so rule 2
(author and sound spacing) plays no part, and no ranker is loaded, so the scores are the index's cosines.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient

from connectors.redis_video_store import video_key
from fyp.feed.assemble import FeedConfig, FeedRanker
from fyp.feed.model import RankerSlot
from fyp.feed.service import create_app, http_vectors
from fyp.index.users import USER_EMBEDDING_KEY, encode_user_embedding
from tests.integration.conftest import eventually
from tests.integration.test_index_service import DIM, embeddings, present, running_service  # noqa: F401
from udfs.video_record import encode_video

pytestmark = pytest.mark.integration


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def _axis(i: int) -> np.ndarray:
    vector = np.zeros(DIM)
    vector[i] = 1.0
    return vector


def test_mmr_spreads_near_duplicates_by_their_embeddings(settings, redis_client, embeddings, index_name):  # noqa: F811
    run = uuid.uuid4().hex[:8]
    rng = np.random.default_rng(11)
    user_direction = _unit(1.1 * _axis(0) + _axis(1) + _axis(2) + _axis(3) + _axis(4))
    noise_dims = np.arange(10, DIM)  # orthogonal to u and to the distinct four: the duplicates' dots stay equal
    vectors: dict[str, np.ndarray] = {}
    duplicates = [f"mmr-{run}-dup{i}" for i in range(4)]
    distinct = [f"mmr-{run}-far{i}" for i in range(4)]
    fillers = [f"mmr-{run}-fill{i}" for i in range(4)]
    for video in duplicates:
        noise = np.zeros(DIM)
        noise[noise_dims] = 0.02 * rng.standard_normal(len(noise_dims))
        vectors[video] = _unit(_axis(0) + noise)
    for i, video in enumerate(distinct):
        vectors[video] = _axis(1 + i)
    for i, video in enumerate(fillers):
        vectors[video] = 0.3 * user_direction + np.sqrt(1 - 0.09) * _axis(5 + i)
    for video, vector in vectors.items():
        embeddings.send(video, vector)
        redis_client.hset(video_key(video), mapping=encode_video({
            "video_id": video, "status": "ready", "author_id": f"{video}-author", "hashtags": ["it"]}))
    embeddings.flush()
    user = f"mmr-{run}-u"
    user_key = USER_EMBEDDING_KEY.format(user_id=user)
    redis_client.set(user_key, encode_user_embedding("it-model", user_direction), ex=300)
    try:
        with running_service(settings, index_name) as index:
            eventually(lambda: all(present(index, v) for v in vectors), timeout_s=30,
                       message="this test's vectors in the index")

            def fetch(user_id: str, k: int) -> dict:
                response = index.get("/v1/candidates",
                                     params={"user": user_id, "k": k, "dots": "true", "sources": "ann"})
                assert response.status_code == 200, response.text
                body = response.json()
                # The embeddings topic holds other tests' vectors too: keep this test's world.
                return {**body, "results": [r for r in body["results"] if r["video_id"] in vectors]}

            def first_page(vectors_source) -> dict:
                ranker = FeedRanker(fetch, redis_client, RankerSlot(None),
                                    config=FeedConfig(candidate_k=200, coarse_k=100), vectors=vectors_source)
                with TestClient(create_app(ranker)) as feed_service:
                    response = feed_service.get("/v1/feed", params={"user": user, "n": 8})
                assert response.status_code == 200, response.text
                return response.json()

            with_embeddings = first_page(http_vectors(str(index.base_url), client=index))
            without = first_page(None)
    finally:
        redis_client.delete(user_key, *(video_key(v) for v in vectors))

    assert with_embeddings["model"]["fallback"] and with_embeddings["counts"]["coarse"] == len(vectors)
    assert with_embeddings["embeddings"] == {"found": len(vectors)}  # the real /v1/vectors answered for each
    assert without["embeddings"] == {"found": 0}
    scored = [item["video_id"] for item in without["items"]]
    spread = [item["video_id"] for item in with_embeddings["items"]]
    # Without embeddings MMR is score order: the four near-duplicates first.
    assert set(scored[:4]) == set(duplicates), scored
    # With them: one duplicate, then the four distinct videos, then the other duplicates.
    assert spread[0] in duplicates and set(spread[1:5]) == set(distinct), spread
    assert set(spread[5:8]) == set(duplicates) - {spread[0]}, spread
