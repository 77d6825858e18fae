"""The HTTP API of the index service: routes over an `IndexApi`, which answers from the index, the user
embeddings, the feed and the candidate generator it is given.

    GET  /v1/similar/{video_id}?k=10    videos most like this one (itself left out)
    GET  /v1/candidates?user=ID&k=100   candidates merged from every source (fyp/candidates), each with its source;
                                        `&region=US&language=en`: that market's trending set, then the global
                                        one (else the user's own market; fyp/candidates/market.py); 422 for
                                        one without the other or a value no event could carry;
                                        `&sources=ann`: only the videos nearest the user's embedding (Redis
                                        `fyp:user_embedding:v2:{id}`); `&dots=true`: each result also
                                        carries `dot`, the user's embedding . the video's (null when either
                                        is missing), the feed's coarse score (fyp/feed/coarse.py)
    POST /v1/dots {"user", "ids": [...]}  the `dot` of each of up to MAX_DOT_IDS videos, as `dots=true` gives
                                        them (null: not in the index, or no usable user embedding), for
                                        candidates the feed service merged itself (fyp/feed/candidates.py)
    POST /v1/vectors {"ids": [...]}     the vectors of up to MAX_VECTOR_IDS videos, each base64 of float32
                                        little-endian, null when not in the index, with the model served
                                        (the feed's reranker uses them for MMR)
    GET  /healthz                       200 once restored and caught up with the topic, 503 before
    GET  /v1/stats                      index size and shape, the model, consumer offsets and lag, snapshots,
                                        refused vectors and queries
    POST /v1/snapshot                   take a snapshot now (waits for it)
    GET  /v1/model                      the model served, the one staged and how many of its vectors
    POST /v1/model/stage                {"model"}: keep that model's vectors aside as they arrive
    POST /v1/model/swap                 {"model", "after_offsets", "timeout_s"}: build an index of the staged
                                        vectors and swap it in (`fyp index reembed` calls these two)

A user embedding of another model than the index serves is refused (409, counted in /v1/stats), never searched.

Nothing here touches Kafka, Redis or S3: `fyp.index.service` wires those in, and a test can pass an
in-memory index and a dict of user embeddings.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fyp.http_metrics import instrument
from fyp.index.ann import Neighbor
from fyp.index.feed import IndexFeed
from fyp.index.holder import IndexHolder, OtherModel
from fyp.index.users import UserEmbedding, UserEmbeddings, no_embedding
from fyp.json_response import JSONBytes

if TYPE_CHECKING:
    from fyp.candidates import CandidateGenerator

__all__ = ["MAX_DOT_IDS", "MAX_VECTOR_IDS", "DotsRequest", "IndexApi", "VectorsRequest", "create_app"]

MAX_VECTOR_IDS = 200  # one feed page's shortlist (100) with room; bounds a request's cost
MAX_DOT_IDS = 1000  # the most candidates a feed asks for (FeedConfig.candidate_k <= 1000)


class VectorsRequest(BaseModel):
    ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(..., max_length=MAX_VECTOR_IDS)


class DotsRequest(BaseModel):
    user: str = Field(min_length=1, max_length=128)
    ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(..., max_length=MAX_DOT_IDS)


def _results(found: Sequence[Neighbor]) -> list[dict[str, Any]]:
    return [{"video_id": n.video_id, "score": round(n.score, 6)} for n in found]


def _took_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class StageRequest(BaseModel):
    model: str = Field(min_length=1, max_length=255)


class SwapRequest(BaseModel):
    model: str = Field(min_length=1, max_length=255)
    after_offsets: dict[int, int] = Field(default_factory=dict)  # partition -> next offset the feed must reach
    timeout_s: float = Field(300.0, gt=0, le=3600)


@dataclass(frozen=True, kw_only=True)
class IndexApi:
    """What each route answers; raises HTTPException for the error answers.

    feed: None for a fixed index (always ready, no snapshots). generator: a `fyp.candidates.CandidateGenerator`;
    without one, /v1/candidates serves ANN only. max_k: the largest k a request may ask for.
    """

    holder: IndexHolder
    users: UserEmbeddings | None = None
    feed: IndexFeed | None = None
    max_k: int = 1000
    generator: CandidateGenerator | None = None

    def ensure_ready(self) -> None:
        if self.feed is not None and not self.feed.ready.is_set():
            raise HTTPException(503, f"the index is not ready yet (phase {self.feed.stats.phase})")

    def health(self) -> JSONResponse:
        feed = self.feed
        phase = feed.stats.phase if feed is not None else "live"
        ok = phase == "live"
        body = {"status": "ok" if ok else phase, "size": len(self.holder.index), "model": self.holder.model}
        if feed is not None and feed.stats.error:
            body["error"] = feed.stats.error
        return JSONResponse(body, status_code=200 if ok else 503)

    def similar(self, video_id: str, k: int) -> dict[str, Any]:
        self.ensure_ready()
        started = time.perf_counter()
        found = self.holder.similar(video_id, k)
        if found is None:
            raise HTTPException(404, f"video {video_id!r} is not in the index")
        return {"video_id": video_id, "k": k, "results": _results(found), "took_ms": _took_ms(started)}

    def user_embedding(self, user: str) -> UserEmbedding:
        """The user's embedding, checked; HTTPException 404 (absent) or 500 (unusable) otherwise."""
        if self.users is None:
            raise HTTPException(503, "no user embedding store is configured")
        try:
            embedding = self.users.get(user)
        except ValueError as exc:
            raise HTTPException(500, str(exc)) from exc
        if embedding is None:
            raise HTTPException(404, no_embedding(user))
        dim = self.holder.index.dim
        if embedding.vector.shape != (dim,):
            raise HTTPException(
                500, f"the embedding of user {user!r} has {embedding.vector.size} floats; the index has {dim}")
        return embedding

    def nearest(self, user: str, k: int) -> list[Neighbor]:
        embedding = self.user_embedding(user)
        try:
            return self.holder.search(embedding.vector, k, model=embedding.model)
        except OtherModel as exc:  # counted and logged by the holder
            raise HTTPException(409, f"the embedding of user {user!r} is refused: {exc}") from exc
        except ValueError as exc:  # NaN or all-zero embedding
            raise HTTPException(500, f"the embedding of user {user!r} is unusable: {exc}") from exc

    def candidates(self, user: str, k: int, sources: str, *, region: str | None = None,
                   language: str | None = None, dots: bool = False) -> dict[str, Any]:
        from fyp.candidates.market import request_market

        try:  # checked before anything is read, so a bad value fails the same way whatever else the request asks
            market = request_market(region, language)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        self.ensure_ready()
        started = time.perf_counter()
        if self.generator is None or sources == "ann":
            found = self.nearest(user, k)
            body = {"user": user, "k": k, "results": _results(found)}
        else:
            generated = self.generator.generate(user, k, self._ann_source(user), market=market)
            body = {"user": user, "k": k, **generated.as_json()}
        if dots:
            self._add_dots(user, body["results"])
        return {**body, "took_ms": _took_ms(started)}

    def vectors(self, request: VectorsRequest) -> dict[str, Any]:
        self.ensure_ready()
        model, found = self.holder.vectors(request.ids)
        return {"model": model, "vectors": {
            v: None if x is None else base64.b64encode(np.asarray(x, dtype="<f4").tobytes()).decode()
            for v, x in zip(request.ids, found, strict=True)}}

    def dots(self, request: DotsRequest) -> dict[str, Any]:
        """`POST /v1/dots`: the dot of each id, as `/v1/candidates?dots=true` gives them, for candidates merged
        elsewhere (the feed service generates them itself: fyp/feed/candidates.py)."""
        self.ensure_ready()
        return {"dots": self._dots(request.user, request.ids)}

    def _dots(self, user: str, video_ids: Sequence[str]) -> list[float | None]:
        """user embedding . video vector per id, rounded, or None (no usable user embedding, or the video is not
        in the index)."""
        try:
            embedding = self.user_embedding(user)
        except HTTPException:
            return [None] * len(video_ids)
        values = self.holder.dots(embedding.vector, video_ids, model=embedding.model)
        return [None if value is None else round(value, 6) for value in values]

    def _add_dots(self, user: str, results: list[dict[str, Any]]) -> None:
        """Each result's `dot` (`_dots`)."""
        for result, value in zip(results, self._dots(user, [r["video_id"] for r in results]), strict=True):
            result["dot"] = value

    def _ann_source(self, user: str) -> Callable[[int], list[Any]]:
        """The `ann` source for the generator: n nearest videos, or LookupError so the other sources still answer."""
        from fyp.candidates.merge import Candidate

        def ann(n: int) -> list[Candidate]:
            try:
                return [Candidate(c.video_id, "ann", round(c.score, 6)) for c in self.nearest(user, min(n, self.max_k))]
            except HTTPException as exc:
                raise LookupError(exc.detail) from exc

        return ann

    def stats(self) -> dict[str, Any]:
        with self.holder.lock:
            index_stats = self.holder.index.stats()
        body: dict[str, Any] = {"index": index_stats, "searches": self.holder.searches, "model": self.holder.model,
                                "refused_queries": self.holder.refused.by_model()}
        feed = self.feed
        if feed is not None:
            body["feed"] = {
                **asdict(feed.stats),
                "topic": feed.config.topic,
                "group_id": feed.config.group_id,
                "offsets": feed.offsets.next_offsets(),
                "refused_vectors": feed.refused.by_model(),
            }
        return body

    def model(self) -> dict[str, Any]:
        feed = self.feed
        return {"model": self.holder.model, "swaps": self.holder.swaps,
                "staging": feed.stats.staging_model if feed else None, "staged": feed.stats.staged if feed else 0}

    def _live_feed(self) -> IndexFeed:
        if self.feed is None:
            raise HTTPException(409, "this index has no feed: its model cannot change")
        self.ensure_ready()
        return self.feed

    def stage(self, request: StageRequest) -> dict[str, Any]:
        feed = self._live_feed()
        try:
            return feed.stage(request.model)
        except (ValueError, RuntimeError) as exc:  # the model is served already; the feed stopped
            raise HTTPException(409, str(exc)) from exc

    def swap(self, request: SwapRequest) -> dict[str, Any]:
        feed = self._live_feed()
        try:
            return asdict(feed.swap_to(request.model, request.after_offsets, request.timeout_s))
        except (ValueError, RuntimeError) as exc:
            raise HTTPException(409, str(exc)) from exc
        except TimeoutError as exc:
            raise HTTPException(504, f"the swap did not happen in time: {exc}") from exc

    def snapshot(self) -> dict[str, Any]:
        if self.feed is None or self.feed.snapshots is None:
            raise HTTPException(409, "snapshots are not configured for this service")
        try:
            manifest = self.feed.request_snapshot()
        except RuntimeError as exc:
            raise HTTPException(409, str(exc)) from exc
        except TimeoutError as exc:
            raise HTTPException(504, "the snapshot did not finish in time; see /v1/stats") from exc
        return {"prefix": manifest.prefix, "size": manifest.size, "offsets": manifest.offsets}


def _feed_running(feed: IndexFeed | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the feed (if any) runs while the app does."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if feed is not None:
            feed.start()
        try:
            yield
        finally:
            if feed is not None:
                feed.stop()
                feed.join(timeout=30)

    return lifespan


def create_app(
    holder: IndexHolder,
    *,
    users: UserEmbeddings | None = None,
    feed: IndexFeed | None = None,
    max_k: int = 1000,
    generator: CandidateGenerator | None = None,
) -> FastAPI:
    """The HTTP API over `holder`; the feed (if any) runs for the app's lifetime. See `IndexApi` for the rest."""
    api = IndexApi(holder=holder, users=users, feed=feed, max_k=max_k, generator=generator)
    app = FastAPI(title="fyp video index", lifespan=_feed_running(feed))
    instrument(app, "index")
    app.get("/healthz")(api.health)
    app.get("/v1/stats")(api.stats)
    app.post("/v1/snapshot")(api.snapshot)
    app.get("/v1/model")(api.model)
    # Plain `def` routes: FastAPI runs them in its thread pool, so a swap that waits never blocks searches.
    app.post("/v1/model/stage")(api.stage)
    app.post("/v1/model/swap")(api.swap)

    # JSONBytes for the two the feed service calls on every feed (the shortlist's vectors; the dots of ~500
    # candidates): FastAPI's jsonable_encoder walk of the answer was most of this service's CPU per feed.
    @app.post("/v1/vectors", response_class=JSONBytes)
    def vectors(request: VectorsRequest) -> JSONBytes:
        return JSONBytes(api.vectors(request))

    @app.post("/v1/dots", response_class=JSONBytes)
    def dots(request: DotsRequest) -> JSONBytes:
        return JSONBytes(api.dots(request))

    # These two declare their query parameters here: their bounds depend on max_k.
    @app.get("/v1/similar/{video_id:path}")  # ids may contain '/'; clients percent-encode them
    def similar(video_id: str, k: int = Query(10, ge=1, le=max_k)) -> dict[str, Any]:
        return api.similar(video_id, k)

    # JSONBytes: ~300-500 plain results, so FastAPI's jsonable_encoder walk and json.dumps are skipped (the
    # feed service asks for this on every feed).
    @app.get("/v1/candidates", response_class=JSONBytes)
    def candidates(
        user: str = Query(..., min_length=1),
        k: int = Query(100, ge=1, le=max_k),
        sources: str = Query("all", pattern="^(all|ann)$"),
        region: str | None = Query(None, description="the market's region (ISO 3166-1), with language"),
        language: str | None = Query(None, description="the market's language (ISO 639-1), with region"),
        dots: bool = Query(False, description="add each result's user . video dot product (the feed's coarse score)"),
    ) -> JSONBytes:
        return JSONBytes(api.candidates(user, k, sources, region=region, language=language, dots=dots))

    return app
