"""The feed service: `GET /v1/feed` over candidates, filters, coarse and fine ranking and the reranker.

    GET  /v1/feed?user=U&n=10    the feed (fyp/feed/assemble.py): items with their scores and sources, the
                                 user's arm ids, the model version (or the coarse fallback, flagged), the
                                 filters' counts and each stage's milliseconds; 422 for a bad user id or n,
                                 503 when the candidate source (the index service) does not answer;
                                 `&explain=true` adds which filter dropped each candidate and the shortlist;
                                 `&at_ms=T` (debug) reads the features as of epoch ms T, within a day of now,
                                 so that two requests score a fixed set alike unless Redis changed between
                                 them (`fyp bench feed-loop`: the decay at read time moves scores otherwise)
    GET  /v1/model               the ranker served, the one wanted, loads so far, the last load error
    POST /v1/model/reload        load the wanted version now (`?version=V` or `latest` changes it); the swap is
                                 one assignment, so a request in flight finishes on the version it started with
    GET  /healthz                200 (the feed answers with or without a model; /v1/model says which)

`build_app` wires the stack: candidates generated in this process (fyp/feed/candidates.py) over the stack's Redis,
the index service (FYP_INDEX_URL, else 127.0.0.1:8090+offset) asked over one keep-alive HTTP client for the ANN
source, the dots and the shortlist's vectors, the ranker store in the media bucket, and the experiments declared
in fyp/experiments/declared.py (their arms' ranker versions pinned at start). `/v1/feed` runs the feed in a worker
thread, at most `concurrency` (default DEFAULT_CONCURRENCY) at once per process, the rest queued in arrival order;
the other routes are plain `def` in FastAPI's thread pool. `serve(workers=N)` runs N such processes behind one socket
(uvicorn's supervisor), each with its own app.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import numpy as np
import orjson
from fastapi import FastAPI, HTTPException, Query

from fyp.experiments.spec import Experiment
from fyp.feed.assemble import CandidatesDown, FeedConfig, FeedRanker, FetchVectors
from fyp.feed.candidates import local_candidates
from fyp.feed.model import RankerSlot
from fyp.feed.rerank import MAX_FEED
from fyp.json_response import JSONBytes

__all__ = ["DEFAULT_PORT", "OPTIONS_ENV", "app_from_env", "app_from_options", "build_app", "create_app", "default_port",
           "http_vectors", "serve"]

log = logging.getLogger("fyp.feed.service")

DEFAULT_PORT = 8095
OPTIONS_ENV = "FYP_FEED_SERVE_OPTIONS"  # serve's options, JSON, for each worker process (`app_from_env`)
# Feeds one worker process assembles at once. A feed is ~8 ms of Python between Redis and HTTP waits, and every
# wait hands the GIL over: with 16 feeds in flight in one process their threads queued on the GIL after each wait,
# which added latency and CPU (docs/FEED.md, "Fewer GIL hand-overs"). Two keep one feed's CPU overlapping another's
# waits.
DEFAULT_CONCURRENCY = 2
MAX_AT_SKEW_MS = 86_400_000  # `at_ms` is for comparing reads a few seconds apart, not for replaying the past


def default_port() -> int:
    """FYP_FEED_PORT, else 8095 shifted by FYP_PORT_OFFSET (like every port of the local stack)."""
    return int(os.environ.get("FYP_FEED_PORT", DEFAULT_PORT + int(os.environ.get("FYP_PORT_OFFSET", "0"))))


def http_vectors(base_url: str, *, timeout_s: float = 2.0, client: httpx.Client | None = None) -> FetchVectors:
    """The shortlist's video embeddings from the index service's `POST /v1/vectors` (video -> float32 vector;
    a video not in the index is left out). Raises `httpx.HTTPError` or ValueError; the feed then goes on
    without embeddings."""
    client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def fetch(video_ids: Sequence[str]) -> dict[str, np.ndarray]:
        response = client.post("/v1/vectors", json={"ids": list(video_ids)})
        if response.status_code != 200:
            raise ValueError(f"index service answered {response.status_code}: {response.text[:200]}")
        found = orjson.loads(response.content)["vectors"]
        return {v: np.frombuffer(base64.b64decode(x), dtype="<f4") for v, x in found.items() if x}

    return fetch


def create_app(ranker: FeedRanker, *, reload_every_s: float = 0.0, workers: int = 1,
               concurrency: int = DEFAULT_CONCURRENCY) -> FastAPI:
    """The HTTP API over `ranker`; with `reload_every_s` > 0, the slot checks for a new wanted version that often.
    workers: how many processes serve (`serve`); with more than one, a reload request reaches one of them, so
    `POST /v1/model/reload?version=V` is refused (409): the processes would serve different versions.
    concurrency: feeds this process assembles at once; the others wait their turn (module docstring)."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    slot = ranker.slot
    feeds_at_once = anyio.CapacityLimiter(concurrency)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        if reload_every_s > 0:
            slot.watch(reload_every_s, stop)
        yield
        stop.set()

    app = FastAPI(title="fyp feed", lifespan=lifespan)

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": slot.status()}

    @app.get("/v1/model")
    def model() -> dict[str, Any]:
        return slot.status()

    @app.post("/v1/model/reload")
    def reload(version: str | None = Query(None, description="a version name, or 'latest'")) -> dict[str, Any]:
        if version is not None and workers > 1:
            raise HTTPException(409, f"this service runs {workers} worker processes and a request reaches one: "
                                     "move models/ranker/LATEST instead, which every worker checks every "
                                     "--reload-every seconds, or serve with --workers 1")
        if version is not None and version != "latest":
            from fyp.ranking.store import check_version

            try:
                check_version(version)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc
        return slot.reload(version)

    # JSONBytes: the body is plain JSON types already, so FastAPI's jsonable_encoder walk and json.dumps are
    # skipped (no response_model either: nothing to validate on the way out).
    @app.get("/v1/feed", response_class=JSONBytes)
    async def feed(user: str = Query(..., min_length=1, max_length=128),
                   n: int = Query(10, ge=1, le=MAX_FEED),
                   explain: bool = Query(False, description="say why each dropped candidate was dropped"),
                   at_ms: int | None = Query(None, ge=0, le=2**53, description="debug: read features as of epoch ms")
                   ) -> JSONBytes:
        if at_ms is not None and abs(at_ms - time.time() * 1000) > MAX_AT_SKEW_MS:
            raise HTTPException(422, f"at_ms must be within {MAX_AT_SKEW_MS} ms of the service's clock")
        try:
            body = await anyio.to_thread.run_sync(partial(ranker.feed, user, n, now_ms=at_ms, explain=explain),
                                                  limiter=feeds_at_once)
            return JSONBytes(body)
        except CandidatesDown as exc:
            raise HTTPException(503, str(exc)) from exc
        except ValueError as exc:  # a user id no event could carry, refused by the candidate source or assignment
            raise HTTPException(422, str(exc)) from exc

    return app


def build_app(settings: Any, *, index_url: str | None = None, model: str = "latest",
              experiments: Sequence[Experiment] | None = None, config: FeedConfig | None = None,
              reload_every_s: float = 60.0, workers: int = 1, concurrency: int = DEFAULT_CONCURRENCY) -> FastAPI:
    """The service wired to the stack of `settings` (see the module docstring); model: "latest" or a version."""
    from fyp.experiments.declared import EXPERIMENTS
    from fyp.index.config import default_port as index_port
    from fyp.index.snapshot import S3ObjectStore
    from fyp.media.publish import make_s3_client

    url = index_url or os.environ.get("FYP_INDEX_URL") or f"http://127.0.0.1:{index_port()}"
    slot = RankerSlot(S3ObjectStore(make_s3_client(settings), settings.media_bucket), wanted=model)
    slot.reload()
    index = httpx.Client(base_url=url.rstrip("/"), timeout=2.0)  # one keep-alive pool for every call
    redis = settings.redis_client()
    # Candidates are generated here (fyp/feed/candidates.py); the index service answers only the ANN source, the
    # dot products and the shortlist's vectors.
    ranker = FeedRanker(local_candidates(redis, index), redis, slot, vectors=http_vectors(url, client=index),
                        experiments=EXPERIMENTS if experiments is None else experiments, config=config)
    return create_app(ranker, reload_every_s=reload_every_s, workers=workers, concurrency=concurrency)


def app_from_options(options: Mapping[str, Any]) -> FastAPI:
    """`build_app` from `serve`'s JSON-able options, for this stack (`fyp.config.load_settings`)."""
    from fyp.config import load_settings
    from fyp.experiments.load import load_experiments

    experiments_file = options.get("experiments_file")
    config = FeedConfig(candidate_k=options.get("candidate_k", 500), coarse_k=options.get("coarse_k", 100),
                        **({"weights": options["weights"]} if options.get("weights") else {}))
    return build_app(load_settings(), index_url=options.get("index_url"), model=options.get("model", "latest"),
                     experiments=load_experiments(Path(experiments_file)) if experiments_file else None,
                     config=config, reload_every_s=options.get("reload_every_s", 60.0),
                     workers=options.get("workers", 1),
                     concurrency=options.get("concurrency", DEFAULT_CONCURRENCY))


def app_from_env() -> FastAPI:
    """The app of one worker process of `serve(workers > 1)`: its options from `OPTIONS_ENV`."""
    return app_from_options(json.loads(os.environ[OPTIONS_ENV]))


def serve(*, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """Run the service until interrupted. options: index_url, model, reload_every_s, candidate_k, coarse_k,
    weights, concurrency, experiments_file (JSON-able: with `workers` > 1 each worker process builds its own app
    from them)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # else a line per call to the index, two per feed
    # No access log: a formatted line per feed is per-request CPU, and the bench and the closed loop count requests
    # themselves.
    if workers == 1:
        uvicorn.run(app_from_options(options), host=host, port=port, log_level="info", access_log=False)
        return
    # Several processes, since one Python process runs one thread at a time (the GIL): uvicorn's supervisor
    # shares the socket, and each worker imports `app_from_env` and builds its own ranker, model and pools.
    os.environ[OPTIONS_ENV] = json.dumps({**options, "workers": workers})
    # A worker builds its app (imports, the model from S3, ONNX Runtime) before it answers uvicorn's health
    # check: well over the default 5 s on a busy machine, after which uvicorn kills and restarts it.
    uvicorn.run("fyp.feed.service:app_from_env", factory=True, workers=workers, host=host, port=port,
                log_level="info", access_log=False, timeout_worker_healthcheck=120)
