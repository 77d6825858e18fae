"""`fyp bench serving`: read latency of what ranking asks for, FeatureClient against Feast's Redis online store.

Both stores hold the same features on the same Redis server, in a database of their own (never the job's,
so the live features are untouched): the user and video sets' columns, written once as the job's packed
values (docs/REDIS_LAYOUT.md) and once through Feast's `write_to_online_store`. Two reads are timed,
alternating between the two clients request by request so that load changes hit both alike:
- a ranking request: 1 user + N candidate videos (FeatureClient.for_request, which also reads the user's
  recent-seen set; Feast: one get_online_features over N entity rows carrying both keys);
- a single entity: one user's features (FeatureClient.get; Feast: one entity row).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.serving_sets import RECENT_SEEN
from featurespec import FeatureSet
from fyp.bench.peers.redis_writer import PackedFeatureWriter
from fyp.bench.stats import latency_summary
from fyp.config import Settings
from fyp.serving.client import FeatureClient

__all__ = ["ServingResult", "alternate", "latency_with_rate", "packed_value", "run_serving"]

TARGET_P99_MS = 3.0
TARGET_RATIO = 5.0


@dataclass(frozen=True, kw_only=True)
class ServingResult:
    users: int
    videos: int
    candidates: int
    requests: int
    feast_requests: int
    request: dict[str, dict[str, float]]  # "fyp" / "feast" -> latency summary + requests_per_s
    single: dict[str, dict[str, float]]
    ratios: dict[str, float]  # feast latency / fyp latency at p50 and p99, per read


def packed_value(event_time_ms: int, row: np.ndarray) -> bytes:
    return (event_time_ms.to_bytes(8, "little", signed=True) + event_time_ms.to_bytes(8, "little", signed=True)
            + row.astype("<f4").tobytes())


def _timed(read: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    read()
    return (time.perf_counter_ns() - start) / 1e6


def latency_with_rate(samples_ms: list[float]) -> dict[str, float]:
    summary = latency_summary(samples_ms)
    summary["requests_per_s"] = round(1000 * len(samples_ms) / sum(samples_ms), 1) if samples_ms else 0.0
    return summary


def _ratio(feast: dict[str, float], fyp: dict[str, float], key: str) -> float:
    return round(feast[key] / fyp[key], 2) if fyp[key] > 0 else float("nan")


def run_serving(
    settings: Settings, *, db: int = 15, users: int = 1_000, videos: int = 20_000, candidates: int = 500,
    requests: int = 1_000, feast_requests: int = 200, seen_per_user: int = 50, seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> ServingResult:
    """Fill Redis database `db` (flushed before and after; never 0, the job's) and time both clients.

    feast_requests: how many of the `requests` ranking requests Feast also serves (evenly spread among them),
    because one takes it hundreds of ms; single-entity reads are timed for both on every request."""
    if db == 0:
        raise ValueError("database 0 holds the job's live features; the bench needs a database of its own")
    if candidates > videos:
        raise ValueError(f"--candidates {candidates} exceeds --videos {videos}")
    if settings.redis_cluster_nodes:
        raise ValueError("this is a Redis Cluster (no databases, and no Feast peer here): run with --cluster")
    from fyp.bench.peers.feast_store import FeastPeer  # Feast is heavy to import; only this bench needs it

    client = settings.redis_client(db=db)
    client.flushdb()
    rng = np.random.default_rng(seed)
    fyp = FeatureClient.from_settings(settings, db=db)
    user_set, video_set = fyp.plans["user"].feature_set, fyp.plans["video"].feature_set
    user_ids = [f"u{i}" for i in range(users)]
    video_ids = [f"v{i}" for i in range(videos)]
    now_ms = int(time.time() * 1000)
    user_rows = {u: rng.random(len(user_set.columns()), dtype=np.float32) * 100 for u in user_ids}
    video_rows = {v: rng.random(len(video_set.columns()), dtype=np.float32) * 100 for v in video_ids}
    try:
        for feature_set, rows in ((user_set, user_rows), (video_set, video_rows)):
            PackedFeatureWriter(client, feature_set).write({i: packed_value(now_ms, row) for i, row in rows.items()})
        pipe = client.pipeline(transaction=False)
        for u in user_ids:
            seen = rng.choice(videos, size=min(seen_per_user, videos), replace=False)
            pipe.zadd(RECENT_SEEN.key_prefix + u, {video_ids[s]: now_ms - int(s) for s in seen})
        pipe.execute()
        with tempfile.TemporaryDirectory(prefix="fyp-feast-") as workdir:
            feast = FeastPeer(settings, db=db, workdir=Path(workdir), feature_sets=(user_set, video_set))
            feast.write(user_set, user_rows, now_ms)
            feast.write(video_set, video_rows, now_ms)
            _check_same_values(fyp, feast, user_set, user_ids[0], now_ms)
            both = feast.references(user_set) + feast.references(video_set)
            user_only = feast.references(user_set)

            def request_reads() -> Iterator[tuple[Callable[[], object], Callable[[], object] | None]]:
                feast_every = max(1, requests // max(1, feast_requests))
                for i in range(requests):
                    user = user_ids[int(rng.integers(users))]
                    picked = [video_ids[i] for i in rng.choice(videos, size=candidates, replace=False)]
                    rows = [{"user_id": user, "video_id": v} for v in picked]
                    with_feast = i % feast_every == 0
                    yield (lambda u=user, p=picked: fyp.for_request(u, p)), (
                        (lambda r=rows: feast.read(both, r)) if with_feast else None)

            def single_reads() -> Iterator[tuple[Callable[[], object], Callable[[], object]]]:
                for _ in range(requests):
                    user = user_ids[int(rng.integers(users))]
                    yield (lambda u=user: fyp.get("user", u)), (lambda u=user: feast.read(user_only, [{"user_id": u}]))

            request = alternate(request_reads(), progress)
            single = alternate(single_reads(), progress)
    finally:
        client.flushdb()
    request_summary = {name: latency_with_rate(samples) for name, samples in request.items()}
    single_summary = {name: latency_with_rate(samples) for name, samples in single.items()}
    ratios = {
        f"{read}_{p}": _ratio(summary["feast"], summary["fyp"], f"{p}_ms")
        for read, summary in (("request", request_summary), ("single", single_summary)) for p in ("p50", "p99")
    }
    return ServingResult(users=users, videos=videos, candidates=candidates, requests=requests,
                         feast_requests=feast_requests, request=request_summary, single=single_summary, ratios=ratios)


def _check_same_values(fyp: FeatureClient, feast, feature_set: FeatureSet, user_id: str, written_ms: int) -> None:
    """Both stores must return the same features, or the comparison means nothing. fyp reads as of the write
    time here, so its read-time window expiry and decay leave the values as written."""
    ours = fyp.get("user", user_id, now_ms=written_ms)
    theirs = feast.read(feast.references(feature_set), [{"user_id": user_id}]).to_dict()
    columns = feature_set.columns()
    expected = np.array([ours.values[c] for c in columns]) if ours else np.full(len(columns), np.nan)
    got = np.array([theirs[f"{feature_set.name}__{c}"][0] for c in columns], dtype=np.float64)
    if not np.allclose(expected, got, rtol=1e-6):
        raise RuntimeError(f"Feast and FeatureClient disagree on user {user_id}: the bench's stores differ")


def alternate(
    reads: Iterator[tuple[Callable[[], object], Callable[[], object] | None]],
    progress: Callable[[int], None] | None, warmup: int = 10, names: tuple[str, str] = ("fyp", "feast"),
) -> dict[str, list[float]]:
    """Time each (fyp, feast) pair back to back, Feast going first every other time it reads (its read may be
    None: fyp alone); the first `warmup` reads of each client are dropped. `names`: the pair's two names."""
    first, second = names
    samples: dict[str, list[float]] = {first: [], second: []}
    seen = {first: 0, second: 0}
    for fyp_read, feast_read in reads:
        order = [(first, fyp_read), (second, feast_read)]
        for name, read in reversed(order) if seen[second] % 2 else order:
            if read is None:
                continue
            elapsed = _timed(read)
            seen[name] += 1
            if seen[name] > warmup:
                samples[name].append(elapsed)
        if progress:
            progress(1)
    return samples
