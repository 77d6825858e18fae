"""`fyp bench serving --cluster`: FeatureClient's reads on a Redis Cluster beside the same reads on a single Redis.

Both stores hold the same packed values (docs/REDIS_LAYOUT.md) under a key namespace of the bench's own, and
two reads are timed, alternating between the stores request by request so that load changes hit both alike:
- a ranking request: 1 user + N candidate videos (`FeatureClient.for_request`, with the recent-seen set);
- a single entity: one user's features (`FeatureClient.get`).

The stores: on a single-profile home, its Redis (database `db`) and a scratch Redis Cluster started for the run
at `port` .. `port + 5`; on a cluster-profile home, its Redis Cluster and a scratch single Redis at `port`.
Scratch stores are stopped and deleted afterwards; on the home's own stores the namespace's keys are deleted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from features.serving_sets import RECENT_SEEN
from fyp.bench.serving import alternate, latency_with_rate, packed_value
from fyp.config import Settings
from fyp.serving.client import FeatureClient
from fyp.serving.retire import retire_prefix
from fyp.stack.redis_cluster import scratch_cluster
from fyp.stack.redis_server import scratch_redis

__all__ = ["NAMESPACE", "TARGET_REQUEST_P99_MS", "TARGET_SINGLE_P99_MS", "ClusterServingResult",
           "run_serving_cluster"]

NAMESPACE = "fyp-bench:"  # before every key the bench writes; no live key starts with it
TARGET_REQUEST_P99_MS = 3.0  # 1 user + 500 videos, on the cluster
TARGET_SINGLE_P99_MS = 0.25  # one user, on the cluster


@dataclass(frozen=True, kw_only=True)
class ClusterServingResult:
    users: int
    videos: int
    candidates: int
    requests: int
    cluster_nodes: int
    request: dict[str, dict[str, float]]  # "single" / "cluster" -> latency summary + requests_per_s
    single_entity: dict[str, dict[str, float]]


@contextlib.contextmanager
def _stores(settings: Settings, port: int) -> Iterator[tuple[Settings, Settings]]:
    """(single Redis settings, Redis Cluster settings): the home's own store and a scratch one of the other kind."""
    if settings.is_cluster:
        with scratch_redis(settings, port=port) as (single, _):
            yield single, settings
    else:
        with scratch_cluster(settings, port=port) as (cluster, _):
            yield settings, cluster


def _fill(client, plans, user_ids, video_ids, rng, now_ms: int, seen_per_user: int) -> None:
    """The same rows on every store (`rng` seeded alike); plain SETs with the set's TTL, grouped by node."""
    pipe = client.pipeline(transaction=False)
    for entity, ids in (("user", user_ids), ("video", video_ids)):
        feature_set = plans[entity].feature_set
        ttl_ms = int(feature_set.ttl.total_seconds() * 1000)
        width = len(feature_set.columns())
        for i in ids:
            pipe.set(NAMESPACE + feature_set.key_prefix + i,
                     packed_value(now_ms, rng.random(width, dtype=np.float32) * 100), px=ttl_ms)
    for u in user_ids:
        seen = rng.choice(len(video_ids), size=min(seen_per_user, len(video_ids)), replace=False)
        pipe.zadd(NAMESPACE + RECENT_SEEN.key_prefix + u, {video_ids[s]: now_ms - int(s) for s in seen})
    pipe.execute()


def run_serving_cluster(
    settings: Settings, *, port: int, db: int = 15, users: int = 1_000, videos: int = 20_000,
    candidates: int = 500, requests: int = 1_000, seen_per_user: int = 50, seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> ClusterServingResult:
    """Fill both stores, time both reads on each, delete what was written. db: the home's single Redis's
    database (never 0, the job's; flushed before and after); port: the scratch store's (first) port."""
    if db == 0:
        raise ValueError("database 0 holds the job's live features; the bench needs a database of its own")
    if candidates > videos:
        raise ValueError(f"--candidates {candidates} exceeds --videos {videos}")
    with _stores(settings, port) as (single_settings, cluster_settings):
        single = FeatureClient.from_settings(single_settings, db=db, namespace=NAMESPACE)
        cluster = FeatureClient.from_settings(cluster_settings, namespace=NAMESPACE)
        writers = {"single": single_settings.redis_client(db=db), "cluster": cluster_settings.redis_client()}
        user_ids = [f"u{i}" for i in range(users)]
        video_ids = [f"v{i}" for i in range(videos)]
        now_ms = int(time.time() * 1000)
        writers["single"].flushdb()
        try:
            for writer in writers.values():
                _fill(writer, single.plans, user_ids, video_ids, np.random.default_rng(seed), now_ms, seen_per_user)
            rng = np.random.default_rng(seed + 1)
            if single.for_request("u0", video_ids[:candidates], now_ms=now_ms).videos.tobytes() != cluster.for_request(
                    "u0", video_ids[:candidates], now_ms=now_ms).videos.tobytes():
                raise RuntimeError("the single Redis and the cluster return different features: the bench's "
                                   "stores differ")

            def request_reads() -> Iterator[tuple[Callable[[], object], Callable[[], object]]]:
                for _ in range(requests):
                    user = user_ids[int(rng.integers(users))]
                    picked = [video_ids[i] for i in rng.choice(videos, size=candidates, replace=False)]
                    yield (lambda u=user, p=picked: single.for_request(u, p)), (
                        lambda u=user, p=picked: cluster.for_request(u, p))

            def single_reads() -> Iterator[tuple[Callable[[], object], Callable[[], object]]]:
                for _ in range(requests):
                    user = user_ids[int(rng.integers(users))]
                    yield (lambda u=user: single.get("user", u)), (lambda u=user: cluster.get("user", u))

            names = ("single", "cluster")
            request = alternate(request_reads(), progress, names=names)
            single_entity = alternate(single_reads(), progress, names=names)
        finally:
            writers["single"].flushdb()
            retire_prefix(writers["cluster"], NAMESPACE)  # SCAN every primary, UNLINK by slot
    return ClusterServingResult(
        users=users, videos=videos, candidates=candidates, requests=requests,
        cluster_nodes=len(cluster_settings.redis_cluster_nodes),
        request={name: latency_with_rate(samples) for name, samples in request.items()},
        single_entity={name: latency_with_rate(samples) for name, samples in single_entity.items()})
