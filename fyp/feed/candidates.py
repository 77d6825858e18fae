"""The feed's candidates, generated in the feed service's own process: `fyp/candidates` (the same generator, sources
and merge as the index service's `/v1/candidates`) over the feed's Redis client, with the index service asked
only for what needs its ANN index.

    a user with no embedding   no call to the index at all: `ann` answers the index's own "no embedding"
                               error (`fyp.index.users.no_embedding`) and every `dot` is null, as
                               `/v1/candidates?dots=true` answers for such a user
    a user with one            `GET /v1/candidates?sources=ann` (the ANN source) and, after the merge,
                               `POST /v1/dots` for the merged candidates (the coarse ranker's dot products)

Why: the index service was one Python process doing every feed's candidate generation (~10 Redis round trips
and the merge) and its JSON, and the feed parsed ~300-500 results back; generating here moves that work into the
feed service, whose workers scale with `fyp serve feed --workers`, and drops the JSON both ways (docs/FEED.md,
"Benchmark"). The body is the one `/v1/candidates?dots=true` gives, so `FeedRanker` takes either source.

Errors as over HTTP: an index service that does not answer, or answers 503 or another unexpected status, is
`CandidatesDown` (the feed's 503); its 404, 409 and 500 for the ANN source (no embedding, another model, an
unusable one) are that source's error and the other sources still answer; its 422 is ValueError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import orjson

from fyp.candidates import CandidateGenerator, RedisSources
from fyp.candidates.merge import Candidate
from fyp.feed.assemble import CandidatesDown, FetchCandidates
from fyp.index.users import RedisUserEmbeddings, UserEmbeddings, no_embedding

__all__ = ["local_candidates"]


def local_candidates(redis: Any, index: httpx.Client, *, embeddings: UserEmbeddings | None = None,
                     generator: CandidateGenerator | None = None, max_k: int = 1000) -> FetchCandidates:
    """A candidate source for `FeedRanker` (module docstring); `index`: a client with the index service's base URL."""
    generator = generator or CandidateGenerator(RedisSources(redis), max_fetch=max_k)
    embeddings = embeddings or RedisUserEmbeddings(redis)

    def fetch(user_id: str, k: int) -> Mapping[str, Any]:
        try:
            has_embedding = embeddings.get(user_id) is not None
        except ValueError:  # unusable: the index answers it (500), as the ANN source's error
            has_embedding = True
        ann = _http_ann(index, user_id, max_k) if has_embedding else _no_ann(user_id)
        generated = generator.generate(user_id, k, ann)
        body = {"user": user_id, "k": k, **generated.as_json()}
        results = body["results"]
        dots = _http_dots(index, user_id, [r["video_id"] for r in results]) if has_embedding and results else None
        for i, result in enumerate(results):
            result["dot"] = dots[i] if dots is not None else None
        return body

    return fetch


def _no_ann(user_id: str) -> Callable[[int], list[Candidate]]:
    def ann(_: int) -> list[Candidate]:
        raise LookupError(no_embedding(user_id))

    return ann


def _get(index: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = index.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise CandidatesDown(f"index service at {index.base_url} not reachable: {exc}") from exc
    if response.status_code == 422:
        raise ValueError(_detail(response))
    return response


def _detail(response: httpx.Response) -> str:
    try:
        return str(orjson.loads(response.content).get("detail", response.text))
    except (orjson.JSONDecodeError, AttributeError):
        return response.text[:200]


def _http_ann(index: httpx.Client, user_id: str, max_k: int) -> Callable[[int], list[Candidate]]:
    def ann(n: int) -> list[Candidate]:
        response = _get(index, "GET", "/v1/candidates", params={"user": user_id, "k": min(n, max_k), "sources": "ann"})
        if response.status_code in (404, 409, 500):  # no, another model's or an unusable embedding: the source's
            raise LookupError(_detail(response))
        if response.status_code != 200:
            raise CandidatesDown(f"index service answered {response.status_code}: {response.text[:200]}")
        return [Candidate(r["video_id"], "ann", r["score"]) for r in orjson.loads(response.content)["results"]]

    return ann


def _http_dots(index: httpx.Client, user_id: str, video_ids: Sequence[str]) -> list[float | None]:
    response = _get(index, "POST", "/v1/dots", content=orjson.dumps({"user": user_id, "ids": list(video_ids)}),
                    headers={"content-type": "application/json"})
    if response.status_code != 200:
        raise CandidatesDown(f"index service answered {response.status_code} for dots: {response.text[:200]}")
    dots = orjson.loads(response.content)["dots"]
    if len(dots) != len(video_ids):
        raise CandidatesDown(f"index service gave {len(dots)} dots for {len(video_ids)} videos")
    return dots
