"""One feed request, stage by stage: candidates -> filters -> coarse -> fine -> rerank.

    candidates  the index service's `/v1/candidates?dots=true` (fyp/candidates: ANN, co-watch, followed,
                trending, exploration; recent-seen and hidden videos already out), `candidate_k` of them
    filters     fyp/feed/filters.py over one Redis round trip (`fyp.feed.reads.read_filter_state`)
    coarse      fyp/feed/coarse.py: the dot product, else popularity; the best `coarse_k` go on
    fine        the loaded ranker (fyp/feed/model.py) over one Redis round trip for the user and those
                candidates (`read_ranker_columns`), its heads combined by `fyp.ranking.combine` with the
                configured weights and the user's experiment arms' `ranker.weights.<head>` overrides
    rerank      fyp/feed/rerank.py (status, author and sound spacing, fresh slots, MMR)

With no model loaded, the fine stage is skipped and the coarse score orders the feed: the response says so
(`model.fallback`, `model.reason`). A user with no features, no embedding and no history gets the candidates'
cold-start sources (trending, exploration) ranked the same way, flagged `cold_start`, never an error.

The viewer's age comes from the user profile (`fyp.feed.profiles`, read in the filter round trip): only a viewer
known to be an adult gets age-restricted videos (rerank's rule 1). The reranker's MMR uses the shortlist's video
embeddings, asked of the index service (`/v1/vectors`, one HTTP call) when the ranker is given `vectors`: they
live in the index, not in Redis. The call runs in a thread pool while the features are read and scored; the
stage `embeddings` is the wait left after that. Without them (none given, or the call failed, which the
response says) MMR is pure score order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fyp.experiments.assign import assign_user, merged_overrides
from fyp.experiments.spec import Experiment
from fyp.feed.coarse import coarse_scores, popularity, top_k
from fyp.feed.filters import apply_filters
from fyp.feed.model import RankerSlot
from fyp.feed.reads import read_filter_state, read_ranker_columns, records_in_order
from fyp.feed.rerank import MAX_FEED, RankedVideo, RerankPolicy, rerank
from fyp.ranking.combine import DEFAULT_HEAD_WEIGHTS, combined_score, head_weights

__all__ = ["FeedConfig", "FeedRanker", "FetchCandidates", "FetchVectors"]

# user, k -> the `/v1/candidates?dots=true` body (results: video_id, source, score, dot); raises `CandidatesDown`
FetchCandidates = Callable[[str, int], Mapping[str, Any]]
# video ids -> their embeddings (the index service's `/v1/vectors`; a video not in the index is left out)
FetchVectors = Callable[[Sequence[str]], Mapping[str, np.ndarray]]


class CandidatesDown(RuntimeError):
    """The candidate source did not answer: the one stage a feed cannot do without."""


@dataclass(frozen=True, kw_only=True)
class FeedConfig:
    """candidate_k: candidates asked for (default 500); coarse_k: how many the coarse ranker keeps (100);
    weights: the head weights before any arm's overrides (default `fyp.ranking.combine.DEFAULT_HEAD_WEIGHTS`)."""

    candidate_k: int = 500
    coarse_k: int = 100
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_HEAD_WEIGHTS))
    policy: RerankPolicy = field(default_factory=RerankPolicy)

    def __post_init__(self) -> None:
        if not 1 <= self.coarse_k <= self.candidate_k <= 1000:
            raise ValueError(f"need 1 <= coarse_k <= candidate_k <= 1000, got {self.coarse_k}, {self.candidate_k}")
        head_weights({f"ranker.weights.{h}": w for h, w in self.weights.items()})  # refuses an unknown head


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.started = self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round((now - self._last) * 1000, 3)
        self._last = now

    def total(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)


class FeedRanker:
    """Serves feeds from injected parts: the candidate source, a Redis client, the ranker slot, experiments."""

    def __init__(self, fetch: FetchCandidates, redis: Any, slot: RankerSlot, *,
                 experiments: Sequence[Experiment] = (), config: FeedConfig | None = None,
                 vectors: FetchVectors | None = None) -> None:
        self.fetch = fetch
        self.vectors = vectors
        # Runs the embeddings calls beside the requests' own threads; bounded, so a slow index queues them.
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="feed-vectors")
        self.redis = redis
        self.slot = slot
        self.experiments = tuple(experiments)
        self.config = config or FeedConfig()
        # Every declared arm's ranker version, loaded now beside the default one (fyp/feed/model.py).
        slot.pin(str(arm.overrides["ranker.model"]) for e in self.experiments for arm in e.arms
                 if "ranker.model" in arm.overrides)

    def feed(self, user_id: str, n: int, *, now_ms: int | None = None, explain: bool = False) -> dict[str, Any]:
        """The feed of `n` (1..MAX_FEED) videos for `user_id`, as the service's JSON body. explain: also say which
        filter dropped each dropped candidate (`explain.dropped`) and which went on to the fine ranker
        (`explain.shortlist`, best coarse score first)."""
        if not 1 <= n <= MAX_FEED:
            raise ValueError(f"n must be in 1..{MAX_FEED}, got {n}")
        now = now_ms or int(time.time() * 1000)
        clock = _Clock()
        model = self.slot.current  # one version for the whole request, whatever a reload does meanwhile
        assignments = assign_user(user_id, self.experiments, now_ms=now) if self.experiments else ()
        overrides = merged_overrides(assignments, self.experiments) if assignments else {}
        arm_fallback: dict[str, Any] | None = None
        if "ranker.model" in overrides:  # the user's arm scores with its own version, if it is loaded
            pinned, why = self.slot.pinned(str(overrides["ranker.model"]))
            if pinned is not None:
                model = pinned
            else:
                arm_fallback = {"version": str(overrides["ranker.model"]), "reason": why}
        clock.lap("assign")

        body = self.fetch(user_id, self.config.candidate_k)
        results = [r for r in body.get("results", []) if r.get("video_id")]
        clock.lap("candidates")

        ids = list(dict.fromkeys(r["video_id"] for r in results))
        first = {}
        for r in results:
            first.setdefault(r["video_id"], r)
        state = read_filter_state(self.redis, user_id, ids, now_ms=now)
        filtered = apply_filters(ids, state.user, state.records)
        clock.lap("filters")

        kept = filtered.kept
        row_of = {v: i for i, v in enumerate(ids)}
        rows = np.asarray([row_of[v] for v in kept], dtype=np.int64)
        dots = np.array([np.nan if first[v].get("dot") is None else float(first[v]["dot"]) for v in kept])
        popular = popularity(state.video_columns, state.video_features[rows]) if len(rows) else np.zeros(0)
        coarse = coarse_scores(dots, popular)
        best = top_k(coarse, self.config.coarse_k)
        shortlist = [kept[i] for i in best]
        coarse_of = {kept[i]: float(coarse[i]) for i in best}
        # The embeddings call goes out now and runs while the features are read and scored: it is an HTTP round
        # trip to another process, and waiting for it in turn added its whole latency to every feed.
        pending = self._pool.submit(self.vectors, shortlist) if self.vectors is not None and shortlist else None
        clock.lap("coarse")

        records = records_in_order(state.records, shortlist)
        weights = head_weights({**{f"ranker.weights.{h}": w for h, w in self.config.weights.items()}, **overrides})
        fine: dict[str, float] = {}
        user_known = False
        if model is not None and shortlist:
            columns = read_ranker_columns(self.redis, model.set_names, user_id, records, now_ms=now)
            clock.lap("features")
            user_columns = [c for c in columns if c.startswith("user_engagement__")]
            user_known = bool(user_columns) and not np.isnan(columns[user_columns[0]][0])
            scores = combined_score(model.runtime.predict(columns), weights)
            fine = {v: float(s) for v, s in zip(shortlist, scores, strict=True)}
            clock.lap("fine")
        else:
            clock.timings["features"] = clock.timings["fine"] = 0.0

        embeddings: Mapping[str, np.ndarray] = {}
        embeddings_error = None
        if pending is not None:
            try:
                embeddings = pending.result()
            except Exception as exc:  # MMR without embeddings is score order: worse, not broken
                embeddings_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            clock.lap("embeddings")  # only the wait left after features and fine

        scored = fine or coarse_of
        ranked = [RankedVideo(video_id=r.video_id, score=scored[r.video_id], author_id=r.author_id or f"?{r.video_id}",
                              sound_id=r.sound_id, status=r.status if r.exists else "ready",
                              audio_muted=r.audio_muted, age_restricted=r.age_restricted,
                              embedding=embeddings.get(r.video_id),
                              exploration=first[r.video_id].get("source") == "exploration")
                  for r in records]
        # An unknown author is its own author ("?{video}"): spacing cannot be enforced without knowing it.
        items = rerank(ranked, n=n, viewer_is_adult=state.viewer_age == "adult", policy=self.config.policy)
        clock.lap("rerank")

        sources = {v: first[v].get("source") for v in shortlist}
        errors = {name: s["error"] for name, s in body.get("sources", {}).items() if "error" in s}
        # Cold start: nothing personal to go on (no embedding for ANN, nothing seen, no user features read).
        cold_start = "ann" in errors and not state.user.recent_seen and not user_known
        return {
            "user": user_id,
            "n": n,
            "items": [{"video_id": i.video_id, "score": round(i.score, 6), "slot": i.slot,
                       "audio_muted": i.audio_muted, "source": sources.get(i.video_id),
                       "coarse": round(coarse_of[i.video_id], 6),
                       "fine": round(fine[i.video_id], 6) if i.video_id in fine else None} for i in items],
            "arms": [a.arm_id for a in assignments],
            "model": {"version": model.version if model else None, "fallback": model is None,
                      **({"reason": self.slot.error or "no model loaded"} if model is None else {}),
                      **({"arm_fallback": arm_fallback} if arm_fallback else {})},
            "weights": weights,
            "viewer": {"age": state.viewer_age},
            "cold_start": cold_start,
            "counts": {"candidates": len(ids), "filtered": len(kept), "coarse": len(shortlist), "feed": len(items)},
            "filters": filtered.dropped,
            "candidate_errors": errors,
            "embeddings": {"found": sum(v in embeddings for v in shortlist),
                           **({"error": embeddings_error} if embeddings_error else {})},
            "timings_ms": {**clock.timings, "total": clock.total()},
            **({"explain": {"dropped": filtered.reasons, "shortlist": shortlist}} if explain else {}),
        }
