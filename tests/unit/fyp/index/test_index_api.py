"""The HTTP layer over an in-memory index and a dict of user embeddings: no Kafka, Redis or S3."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fyp.index.api import create_app
from fyp.index.config import ServiceConfig
from fyp.index.feed import IndexFeed
from fyp.index.holder import IndexHolder
from fyp.index.scann_index import ScannIndex
from fyp.index.snapshot import LocalObjectStore, SnapshotStore
from fyp.index.users import USER_EMBEDDING_KEY, UserEmbedding
from tests.unit.fyp.index.index_records import DIM, unit

MODEL = "clip-v1"


class DictUsers:
    """User embeddings by user id; a bare vector is of MODEL, a (model, vector) pair of that model."""

    def __init__(self, vectors: dict[str, np.ndarray | tuple[str, np.ndarray]]) -> None:
        self.vectors = vectors

    def get(self, user_id: str):
        found = self.vectors.get(user_id)
        if found is None:
            return None
        return UserEmbedding(*found) if isinstance(found, tuple) else UserEmbedding(MODEL, found)


@pytest.fixture
def client() -> TestClient:
    ids = [f"v{i}" for i in range(40)]
    vectors = np.stack([unit(i) + 0.01 * i for i in range(40)])
    holder = IndexHolder(ScannIndex.build(ids, vectors), model=MODEL)
    users = DictUsers({"u1": unit(3), "u-bad": np.ones(3, np.float32), "u-zero": np.zeros(DIM, np.float32),
                       "u-old": ("clip-v0", unit(3))})
    with TestClient(create_app(holder, users=users, max_k=50)) as c:
        c.app.state.holder = holder
        yield c


def test_similar_leaves_the_video_itself_out(client):
    body = client.get("/v1/similar/v3", params={"k": 4}).json()
    found = [r["video_id"] for r in body["results"]]
    assert len(found) == 4 and "v3" not in found
    assert set(found) <= {f"v{i}" for i in range(3, 40, DIM)}  # same direction as v3
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_metrics_count_requests_by_route_template_not_by_path(client):
    before = _requests(client, '/v1/similar/{video_id:path}', "200")
    for video in ("v3", "v4"):
        assert client.get(f"/v1/similar/{video}", params={"k": 2}).status_code == 200
    assert _requests(client, '/v1/similar/{video_id:path}', "200") == before + 2
    client.request("BREW", "/v1/similar/v3")  # any method token a client sends
    text = client.get("/metrics").text
    assert 'fyp_http_request_seconds_bucket{' in text and "v3" not in text and "process_" in text
    assert 'method="OTHER"' in text and "BREW" not in text


def _requests(client, route: str, status: str) -> float:
    """fyp_http_requests_total of the index service for GET `route` answering `status`, from GET /metrics."""
    wanted = f'fyp_http_requests_total{{method="GET",route="{route}",service="index",status="{status}"}} '
    line = next((ln for ln in client.get("/metrics").text.splitlines() if ln.startswith(wanted)), None)
    return float(line.split()[-1]) if line else 0.0


def test_similar_of_an_unknown_video_is_404(client):
    response = client.get("/v1/similar/nope")
    assert response.status_code == 404
    assert "not in the index" in response.json()["detail"]


def test_similar_accepts_ids_with_slashes():
    holder = IndexHolder(ScannIndex.build(["a/b", "c", "d"], np.eye(3, dtype=np.float32) + 0.1))
    with TestClient(create_app(holder)) as client:
        body = client.get("/v1/similar/a%2Fb", params={"k": 1}).json()
        assert body["video_id"] == "a/b" and len(body["results"]) == 1


@pytest.mark.parametrize("k", [0, 51, "x"])
def test_k_is_validated(client, k):
    assert client.get("/v1/similar/v1", params={"k": k}).status_code == 422


def test_candidates_from_the_user_embedding(client):
    body = client.get("/v1/candidates", params={"user": "u1", "k": 3}).json()
    assert body["user"] == "u1" and len(body["results"]) == 3
    assert body["results"][0]["video_id"] in {f"v{i}" for i in range(3, 40, DIM)}


def test_candidates_with_dots_carry_the_user_video_dot_product(client):
    body = client.get("/v1/candidates", params={"user": "u1", "k": 5, "dots": "true"}).json()
    query = unit(3)
    for result in body["results"]:
        vector = client.app.state.holder.index.vector(result["video_id"])
        assert result["dot"] == pytest.approx(float(vector @ query), abs=1e-5)
        # ANN's score estimates that dot product (ScaNN scores quantised vectors); `dot` is exact.
        assert result["dot"] == pytest.approx(result["score"], abs=0.02)
    assert "dot" not in client.get("/v1/candidates", params={"user": "u1", "k": 2}).json()["results"][0]


def test_candidates_without_an_embedding_say_which_key_is_missing(client):
    response = client.get("/v1/candidates", params={"user": "ghost"})
    assert response.status_code == 404
    assert USER_EMBEDDING_KEY.format(user_id="ghost") in response.json()["detail"]


@pytest.mark.parametrize(("user", "message"), [("u-bad", "has 3 floats"), ("u-zero", "unusable")])
def test_candidates_with_a_broken_embedding_are_a_server_error(client, user, message):
    response = client.get("/v1/candidates", params={"user": user})
    assert response.status_code == 500 and message in response.json()["detail"]


def test_an_embedding_of_another_model_is_refused_counted_and_never_searched(client):
    response = client.get("/v1/candidates", params={"user": "u-old", "k": 3})
    assert response.status_code == 409
    assert "model 'clip-v0'" in response.json()["detail"] and "serves 'clip-v1'" in response.json()["detail"]
    stats = client.get("/v1/stats").json()
    assert stats["searches"] == 0 and stats["refused_queries"] == {"other_model": {"clip-v0": 1}}
    assert stats["model"] == MODEL


def test_health_and_stats(client):
    assert client.get("/healthz").json() == {"status": "ok", "size": 40, "model": MODEL}
    client.get("/v1/similar/v1")
    stats = client.get("/v1/stats").json()
    assert stats["index"]["size"] == 40 and stats["index"]["kind"] == "scann" and stats["searches"] == 1
    assert client.post("/v1/snapshot").status_code == 409  # no feed, no snapshots
    assert client.get("/v1/model").json() == {"model": MODEL, "swaps": 0, "staging": None, "staged": 0}
    assert client.post("/v1/model/stage", json={"model": "m2"}).status_code == 409  # no feed: a fixed index


# -- what the split makes reachable: a feed that has not started, and the generator's ann source ---------------


def never_started():
    raise AssertionError("the feed must not start")


@pytest.fixture
def unstarted(tmp_path) -> tuple[TestClient, IndexFeed]:
    """An app whose feed never starts (no lifespan without `with TestClient`): the state before it is ready."""
    config = ServiceConfig(dim=DIM, replica_id="test", snapshot_every_s=0)
    holder = IndexHolder(ScannIndex(dim=DIM))
    snapshots = SnapshotStore(LocalObjectStore(tmp_path), config.name)
    feed = IndexFeed(holder, config, consumer_factory=never_started, snapshots=snapshots)
    return TestClient(create_app(holder, feed=feed, users=DictUsers({"u1": unit(1)}))), feed


def test_before_the_feed_is_ready_searches_are_503_and_health_names_the_phase(unstarted):
    client, _ = unstarted
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json() == {"status": "starting", "size": 0, "model": None}
    for path, params in [("/v1/similar/v1", {}), ("/v1/candidates", {"user": "u1"})]:
        response = client.get(path, params=params)
        assert response.status_code == 503 and "phase starting" in response.json()["detail"]
    assert client.get("/v1/stats").json()["feed"]["group_id"] == "fyp-index-videos-test"


def test_a_snapshot_needs_a_running_feed(unstarted):
    client, _ = unstarted
    response = client.post("/v1/snapshot")
    assert response.status_code == 409 and "not running" in response.json()["detail"]


class AnnOnlyGenerator:
    """Stands in for `fyp.candidates.CandidateGenerator`: asks the ann source for 2k and reports its error."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.markets: list[object] = []

    def generate(self, user: str, k: int, ann, *, market=None) -> SimpleNamespace:
        self.calls.append((user, k))
        self.markets.append(market)
        try:
            found, errors = ann(2 * k), {}
        except LookupError as exc:
            found, errors = [], {"ann": str(exc)}
        results = [{"video_id": c.video_id, "score": c.score, "source": c.source} for c in found[:k]]
        return SimpleNamespace(as_json=lambda: {"results": results, "errors": errors})


def test_candidates_go_through_the_generator_with_an_ann_source_capped_at_max_k():
    holder = IndexHolder(ScannIndex.build([f"v{i}" for i in range(60)], np.stack([unit(i) for i in range(60)])),
                         model=MODEL)
    generator = AnnOnlyGenerator()
    users = DictUsers({"u1": unit(3), "u-old": ("clip-v0", unit(3))})
    with TestClient(create_app(holder, users=users, max_k=50, generator=generator)) as client:
        body = client.get("/v1/candidates", params={"user": "u1", "k": 30}).json()
        assert generator.calls == [("u1", 30)] and len(body["results"]) == 30
        assert {r["source"] for r in body["results"]} == {"ann"} and body["errors"] == {}
        assert body["results"][0]["video_id"] in {f"v{i}" for i in range(3, 60, DIM)}

        ghost = client.get("/v1/candidates", params={"user": "ghost"})  # the other sources would still answer
        assert ghost.status_code == 200 and USER_EMBEDDING_KEY.format(user_id="ghost") in ghost.json()["errors"]["ann"]
        old = client.get("/v1/candidates", params={"user": "u-old"})  # refused for ann; the others still answer
        assert old.status_code == 200 and "refused" in old.json()["errors"]["ann"]

        ann_only = client.get("/v1/candidates", params={"user": "u1", "k": 2, "sources": "ann"}).json()
        assert len(generator.calls) == 3 and "source" not in ann_only["results"][0]
        assert client.get("/v1/candidates", params={"user": "u1", "sources": "cowatch"}).status_code == 422


@pytest.mark.parametrize(("params", "message"), [
    ({"region": "US"}, "give both or neither (got region only)"),
    ({"language": "en"}, "give both or neither (got language only)"),
    ({"region": "U:S", "language": "en"}, "region 'U:S' holds ':'"),
    ({"region": "US", "language": "e" * 36}, "language is 36 bytes, more than the 35 an event may carry"),
    ({"region": "", "language": "en"}, "region must not be empty"),
    ({"region": "US", "language": "en\n"}, "control character"),
])
def test_a_bad_market_is_refused_before_anything_is_read(params, message):
    holder = IndexHolder(ScannIndex.build(["v0"], np.stack([unit(0)])), model=MODEL)
    generator = AnnOnlyGenerator()
    with TestClient(create_app(holder, users=DictUsers({}), generator=generator)) as client:
        response = client.get("/v1/candidates", params={"user": "new", **params})
    assert response.status_code == 422 and message in response.json()["detail"]
    assert generator.calls == []


def test_the_requested_market_reaches_the_generator():
    holder = IndexHolder(ScannIndex.build(["v0"], np.stack([unit(0)])), model=MODEL)
    generator = AnnOnlyGenerator()
    with TestClient(create_app(holder, users=DictUsers({}), generator=generator)) as client:
        assert client.get("/v1/candidates", params={"user": "new", "region": "FR", "language": "fr"}).status_code == 200
        assert client.get("/v1/candidates", params={"user": "new"}).status_code == 200
    assert [m.key if m else None for m in generator.markets] == ["FR:fr", None]


def test_vectors_come_back_exact_with_the_model_and_null_for_unknown_videos(client):
    import base64

    from fyp.index.api import MAX_VECTOR_IDS

    body = client.post("/v1/vectors", json={"ids": ["v3", "nope", "v7"]}).json()
    assert body["model"] == MODEL and body["vectors"]["nope"] is None
    for video in ("v3", "v7"):
        vector = np.frombuffer(base64.b64decode(body["vectors"][video]), dtype="<f4")
        np.testing.assert_array_equal(vector, client.app.state.holder.index.vector(video))
    assert client.post("/v1/vectors", json={"ids": ["v1"] * (MAX_VECTOR_IDS + 1)}).status_code == 422
    assert client.post("/v1/vectors", json={"ids": ["x" * 129]}).status_code == 422
