"""The feed's own candidate generation (fyp/feed/candidates.py) answers what the index service's
`/v1/candidates?dots=true` answers, over the same generator, asking the index only for ANN and dot products."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from fyp.candidates import CandidateGenerator
from fyp.candidates.merge import Candidate
from fyp.feed.assemble import CandidatesDown, FeedRanker
from fyp.feed.candidates import local_candidates
from fyp.feed.model import RankerSlot
from fyp.feed.service import create_app
from fyp.index.api import MAX_DOT_IDS
from fyp.index.api import create_app as index_app
from fyp.index.holder import IndexHolder
from fyp.index.scann_index import ScannIndex
from tests.unit.fyp.candidates.test_candidates import PlainSources
from tests.unit.fyp.feed.test_feed_assembly import world
from tests.unit.fyp.index.index_records import unit
from tests.unit.fyp.index.test_index_api import MODEL, DictUsers


def sources() -> PlainSources:
    # v0..v39 are in the index; the other sources overlap ANN (v3, v5) and hold videos it lacks (t*, e*).
    return PlainSources(seen=["v7"], follows={"a"}, market=None, hidden={"t2"}, lists={
        "cowatch": [Candidate("v3", "cowatch", 0.9), Candidate("t1", "cowatch", 0.5)],
        "followed": [Candidate("v5", "followed", 9.0), Candidate("t2", "followed", 8.0)],
        "trending:global": [Candidate(f"t{i}", "trending", 10.0 - i) for i in range(8)],
        "exploration": [Candidate(f"e{i}", "exploration", 5.0 - i) for i in range(4)]})


class Counting(TestClient):
    """The index app's test client, counting the calls the feed makes."""

    calls: list[str]

    def request(self, method, url, **kwargs):  # type: ignore[override]
        self.calls.append(f"{method} {url}")
        return super().request(method, url, **kwargs)


@pytest.fixture
def index() -> Counting:
    holder = IndexHolder(ScannIndex.build([f"v{i}" for i in range(40)],
                                          np.stack([unit(i) + 0.01 * i for i in range(40)])), model=MODEL)
    users = DictUsers({"u1": unit(3), "u-old": ("clip-v0", unit(3)), "u-bad": np.ones(3, np.float32)})
    app = index_app(holder, users=users, max_k=50, generator=CandidateGenerator(sources(), max_fetch=50))
    with Counting(app) as client:
        client.calls = []
        client.app.state.users = users
        yield client


@pytest.mark.parametrize("user", ["u1", "ghost", "u-old", "u-bad"])
def test_the_feed_generates_what_the_index_service_would_answer(index, user):
    over_http = index.get("/v1/candidates", params={"user": user, "k": 20, "dots": "true"}).json()
    over_http.pop("took_ms")
    index.calls.clear()
    fetch = local_candidates(None, index, embeddings=index.app.state.users,
                             generator=CandidateGenerator(sources(), max_fetch=50), max_k=50)
    body = fetch(user, 20)
    body.pop("timings_ms"), over_http.pop("timings_ms")
    assert body == over_http
    if user == "u1":  # ANN and dots asked of the index, nothing else
        assert [c.split("?")[0] for c in index.calls] == ["GET /v1/candidates", "POST /v1/dots"]
        assert any(r["dot"] is not None for r in body["results"]) and any(r["dot"] is None for r in body["results"])
    elif user == "ghost":  # no embedding: the index is not asked at all
        assert index.calls == [] and "fyp:user_embedding:v2:ghost" in body["sources"]["ann"]["error"]
    else:  # the index refuses the embedding: the ANN source's error (the dots are still the index's to say)
        assert [c.split("?")[0] for c in index.calls] == ["GET /v1/candidates", "POST /v1/dots"]
        assert "error" in body["sources"]["ann"]


def test_dots_are_the_candidates_dots_and_bounded(index):
    results = index.get("/v1/candidates", params={"user": "u1", "k": 20, "dots": "true"}).json()["results"]
    ids = [r["video_id"] for r in results]
    assert index.post("/v1/dots", json={"user": "u1", "ids": ids}).json() == {"dots": [r["dot"] for r in results]}
    assert index.post("/v1/dots", json={"user": "ghost", "ids": ["v1"]}).json() == {"dots": [None]}
    assert index.post("/v1/dots", json={"user": "u1", "ids": ["v1"] * (MAX_DOT_IDS + 1)}).status_code == 422
    assert index.post("/v1/dots", json={"user": "u" * 129, "ids": ["v1"]}).status_code == 422


def answering(status: int | None, body: bytes = b'{"detail": "nope"}') -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        if status is None:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status, content=body)

    return httpx.Client(base_url="http://index", transport=httpx.MockTransport(handle))


@pytest.mark.parametrize(("status", "error"), [(None, CandidatesDown), (503, CandidatesDown), (502, CandidatesDown),
                                               (422, ValueError)])
def test_an_index_that_fails_the_ann_call_fails_the_feed_as_over_http(status, error):
    fetch = local_candidates(None, answering(status), embeddings=DictUsers({"u1": unit(3)}),
                             generator=CandidateGenerator(sources()))
    with pytest.raises(error):
        fetch("u1", 10)
    assert fetch("ghost", 10)["results"]  # a user without an embedding never needs the index


def test_with_several_workers_a_reload_of_a_named_version_is_refused():
    redis, _ = world()
    ranker = FeedRanker(lambda user, k: {"results": []}, redis, RankerSlot(None))
    with TestClient(create_app(ranker, workers=2)) as client:
        refused = client.post("/v1/model/reload", params={"version": "v1"})
        assert refused.status_code == 409 and "LATEST" in refused.json()["detail"]
        assert client.post("/v1/model/reload").status_code == 200
    with TestClient(create_app(ranker)) as client:
        assert client.post("/v1/model/reload", params={"version": "bad"}).status_code == 422

