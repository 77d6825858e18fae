"""The closed-loop generator (`fyp produce --feed URL`): simulated users ask a feed service for their feed, react to
what it shows by the generator's behaviour model, and their events go to Kafka as `fyp produce`'s do.

Thin on purpose: the reactions are `TrafficModel.react` (fyp/traffic/behaviour.py's probabilities), where a
session ends is fyp/traffic/closed_loop.py, the encoding is `FastEncoder` and the sending `BatchSender`. Here are
only the sessions' loop, the threads and the counts.

A session: request `n` videos for the user, react to them in order, and request the next page, until fatigue ends
the session (closed_loop.py) or `max_pages` pages were shown. A feed request that fails with no answer, a timeout
or a 5xx is retried with exponential backoff (tenacity); when every attempt failed, or the service refused the
request (4xx), it counts as a feed error and the session ends; the run goes on.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from fyp.feed.client import FeedError
from fyp.traffic.closed_loop import (
    SessionState,
    head_views,
    percentile,
    session_cut,
    skipped_views,
    space_views,
    video_indices,
)
from fyp.traffic.encoder import EncodedBatch, FastEncoder
from fyp.traffic.model import TrafficModel
from fyp.traffic.vocab import SURFACES

__all__ = ["ClosedLoop", "FetchFeed", "LoopPlan", "LoopReport", "retrying"]

FetchFeed = Callable[[str, int], Mapping[str, Any]]  # (user id, n) -> the /v1/feed body; raises FeedError
Clock = Callable[[], int]
MAX_FEED_SIZE = 100  # the feed service's own limit (fyp/feed/rerank.py MAX_FEED)
MAX_CONCURRENCY = 64
MAX_LATENCY_SAMPLES = 100_000  # a long run keeps a reservoir sample of its feed latencies, not all of them
_FOR_YOU = next(i for i, (name, _) in enumerate(SURFACES) if name == "for_you")  # the surface a feed page is


@dataclass(frozen=True, kw_only=True)
class LoopPlan:
    """users: simulated users u0..u<users-1>; sessions: sessions per user, or duration_s: start sessions (user after
    user, round robin) until this many seconds have passed; feed_size: videos per request; concurrency: sessions
    running at once; max_pages: pages per session at most; attempts: tries per feed request."""

    users: int
    sessions: int | None = None
    duration_s: float | None = None
    feed_size: int = 10
    concurrency: int = 4
    max_pages: int = 50
    attempts: int = 4

    def __post_init__(self) -> None:
        if (self.sessions is None) == (self.duration_s is None):
            raise ValueError("give either sessions per user or a duration, not both or neither")
        if self.sessions is not None and not 1 <= self.sessions <= 10_000:
            raise ValueError(f"sessions must be in 1..10000, got {self.sessions}")
        if self.duration_s is not None and not 0 < self.duration_s <= 86_400:
            raise ValueError(f"duration must be in (0, 86400] s, got {self.duration_s}")
        if self.users < 1:
            raise ValueError(f"users must be >= 1, got {self.users}")
        if not 1 <= self.feed_size <= MAX_FEED_SIZE:
            raise ValueError(f"feed size must be in 1..{MAX_FEED_SIZE}, got {self.feed_size}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be in 1..{MAX_CONCURRENCY}, got {self.concurrency}")
        if not 1 <= self.max_pages <= 10_000 or not 1 <= self.attempts <= 20:
            raise ValueError(f"max_pages must be in 1..10000 and attempts in 1..20, got {self.max_pages}, "
                             f"{self.attempts}")


@dataclass(kw_only=True)
class LoopReport:
    """What a closed-loop run did. feeds: pages served; feed_errors: requests given up on (and why, by status;
    0 = no answer); retries: failed attempts that were retried; unknown_items: items not of the generator's world;
    arms: per arm id ('experiment:arm', or 'none'), its sessions, events by type and by user (`per_user`: user
    index -> events by type; a user served a page with no known video counts with no events); latencies_ms: each
    served page's request time, retries and their backoff included (a uniform sample of MAX_LATENCY_SAMPLES once
    there are more); produced / failed: events Kafka acknowledged / did not."""

    sessions: int = 0
    feeds: int = 0
    feed_errors: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    unknown_items: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    produced: int = 0
    failed: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    def arm(self, arm_id: str) -> dict[str, Any]:
        return self.arms.setdefault(arm_id, {"per_user": {}, "sessions": 0, "by_type": Counter()})

    def as_json(self) -> dict[str, Any]:
        p50, p99 = percentile(self.latencies_ms, 50), percentile(self.latencies_ms, 99)
        return {
            "sessions": self.sessions,
            "feeds": self.feeds,
            "feed_errors": sum(self.feed_errors.values()),
            "feed_errors_by_status": {str(k): v for k, v in sorted(self.feed_errors.items())},
            "retries": self.retries,
            "unknown_items": self.unknown_items,
            "produced": self.produced,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "feed_latency_ms": {"p50": None if p50 is None else round(p50, 2),
                                "p99": None if p99 is None else round(p99, 2)},
            "by_type": dict(sorted(self.by_type.items())),
            "arms": {arm: {"users": len(a["per_user"]), "sessions": a["sessions"],
                           "by_type": dict(sorted(a["by_type"].items()))} for arm, a in sorted(self.arms.items())},
            "interrupted": self.interrupted,
        }


def retrying(fetch: FetchFeed, attempts: int, on_retry: Callable[[], None]) -> FetchFeed:
    """`fetch` with up to `attempts` tries for an unanswered, timed-out or 5xx request (exponential backoff from
    0.1 s to 2 s); a 4xx is final at once."""
    def transient(exc: BaseException) -> bool:
        return isinstance(exc, FeedError) and (exc.status == 0 or exc.status >= 500)

    def call(user_id: str, n: int) -> Mapping[str, Any]:
        for attempt in Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=0.1, max=2.0),
                                retry=retry_if_exception(transient), before_sleep=lambda _: on_retry(),
                                reraise=True):
            with attempt:
                return fetch(user_id, n)
        raise AssertionError("unreachable: tenacity reraises the last error")

    return call


class ClosedLoop:
    """Runs sessions against a feed: `fetch` asks for a page, `send` takes each page's encoded events.

    The model and the encoder are shared by the sessions' threads behind one lock (their draws are cheap next to
    an HTTP request), so with concurrency 1, one seed and the same feed answers, a run draws the same reactions.
    clock: epoch ms, read once per page (the page's events are that reading plus VIEW_SPACING_MS per view).
    """

    def __init__(self, model: TrafficModel, encoder: FastEncoder, fetch: FetchFeed,
                 send: Callable[[EncodedBatch], None], plan: LoopPlan, *, clock: Clock, seed: int) -> None:
        if plan.users > model.config.users:
            raise ValueError(f"{plan.users} users, but the generator's world has {model.config.users}")
        self.model, self.encoder, self.plan, self.clock = model, encoder, plan, clock
        self.report = LoopReport()
        self._send = send
        self._fetch = retrying(fetch, plan.attempts, self._count_retry)
        self._lock = threading.Lock()
        self._leave_rng = np.random.default_rng([seed, 6])
        self._sample_rng = random.Random(seed)  # latency sampling only: apart from the behaviour's draws
        self._sessions = itertools.count()
        self._stop = threading.Event()

    def _count_retry(self) -> None:
        with self._lock:
            self.report.retries += 1

    def _work(self) -> Iterator[int]:
        """User indices, one per session to run."""
        if self.plan.sessions is not None:
            for _ in range(self.plan.sessions):
                yield from range(self.plan.users)
        else:
            yield from itertools.cycle(range(self.plan.users))

    def run(self, on_progress: Callable[[LoopReport, float], None] | None = None) -> LoopReport:
        """Run the plan; Ctrl-C stops starting new pages and returns what was done."""
        start = time.monotonic()
        deadline = start + self.plan.duration_s if self.plan.duration_s is not None else float("inf")
        work = self._work()
        work_lock = threading.Lock()

        def worker() -> None:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with work_lock:
                    user = next(work, None)
                if user is None:
                    return
                self._session(user, deadline)
                if on_progress is not None:
                    with self._lock:
                        on_progress(self.report, time.monotonic() - start)

        pool = ThreadPoolExecutor(self.plan.concurrency, thread_name_prefix="feed-loop")
        futures = [pool.submit(worker) for _ in range(self.plan.concurrency)]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            self._stop.set()
            self.report.interrupted = True
        finally:
            pool.shutdown(wait=True)
        self.report.seconds = time.monotonic() - start
        return self.report

    def _session(self, user: int, deadline: float) -> None:
        with self._lock:
            state = SessionState(user=user, session=next(self._sessions))
            self.report.sessions += 1
        user_id = f"u{user}"
        arms_seen: set[str] = set()
        for _ in range(self.plan.max_pages):
            if self._stop.is_set() or time.monotonic() >= deadline:
                return
            started = time.perf_counter()
            try:
                body = self._fetch(user_id, self.plan.feed_size)
            except FeedError as exc:
                with self._lock:
                    self.report.feed_errors[exc.status] += 1
                return
            latency_ms = (time.perf_counter() - started) * 1000
            with self._lock:
                batch, state, ended = self._react(state, body, latency_ms, arms_seen)
            if batch is not None:
                self._send(batch)
            if ended:
                return

    def _react(self, state: SessionState, body: Mapping[str, Any], latency_ms: float,
               arms_seen: set[str]) -> tuple[EncodedBatch | None, SessionState, bool]:
        """One page: reactions, the session's cut, the encoded events and the counts (called under the lock)."""
        report = self.report
        report.feeds += 1
        if len(report.latencies_ms) < MAX_LATENCY_SAMPLES:
            report.latencies_ms.append(latency_ms)
        elif (slot := self._sample_rng.randrange(report.feeds)) < MAX_LATENCY_SAMPLES:  # reservoir sampling
            report.latencies_ms[slot] = latency_ms
        videos, unknown = video_indices(body.get("items", []))
        report.unknown_items += unknown
        served = tuple(str(a) for a in body.get("arms", []))
        arms = served or ("none",)
        for arm_id in arms:
            entry = report.arm(arm_id)
            entry["per_user"].setdefault(state.user, Counter())
            if arm_id not in arms_seen:
                entry["sessions"] += 1
        arms_seen.update(arms)
        if not videos:
            return None, state, True
        n = len(videos)
        block = self.model.react([state.user] * n, [state.session] * n,
                                 list(range(state.position, state.position + n)), np.asarray(videos), self.clock())
        leaves = (self._leave_rng.random(n) < 1.0 / self.model.config.mean_session_views).tolist()
        views, ended, state = session_cut(state, skipped_views(block), leaves)
        # A feed page is shown on the For You surface (react draws a surface per view, as open-loop traffic mixes),
        # and its impressions carry the arms that served it (Impression v2 `arms`).
        block = replace(space_views(head_views(block, views)), surface=[_FOR_YOU] * views, arms=[served] * views)
        batch = self.encoder.encode(block)
        report.by_type.update(batch.counts)
        for arm_id in arms:
            report.arm(arm_id)["by_type"].update(batch.counts)
            report.arm(arm_id)["per_user"][state.user].update(batch.counts)
        return batch, state, ended

