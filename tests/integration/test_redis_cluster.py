"""The readers on a real Redis Cluster (six redis-server processes, 3 primaries + 3 replicas), started by this
module with `scratch_cluster` beside a scratch single Redis, so the session's single-profile stack is untouched.

FeatureClient returns what it returns on a single Redis for the same data, reading the keys of every primary
in one request; SCAN-based counts see every node; a SIGKILLed primary's replica takes over and reads succeed
again. The ports are FYP_TEST_REDIS_CLUSTER_PORT (default: this stack's Redis port + 60) and the 6 after it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
import redis
from redis.cluster import RedisCluster

from features.follow_graph import following_key
from features.serving_sets import RECENT_SEEN, USER_MARKET
from fyp.candidates.history_sets import write_sets
from fyp.candidates.sources import COWATCH_KEY, RedisSources
from fyp.config import Settings, load_settings
from fyp.serving import FeatureClient
from fyp.stack.observe import feature_key_counts
from fyp.stack.process import reap
from fyp.stack.redis_cluster import NODE_TIMEOUT_MS, scratch_cluster
from fyp.stack.redis_server import scratch_redis
from fyp.stack.service import ProcessService

pytestmark = pytest.mark.integration

VIDEOS = 600
USERS = 5


@dataclass(frozen=True, kw_only=True)
class Stores:
    cluster_settings: Settings
    nodes: list[ProcessService]
    cluster: RedisCluster
    single: redis.Redis
    now_ms: int
    video_ids: list[str]


def _write(client, rows: dict[str, bytes], seen: dict[str, dict[str, int]]) -> None:
    """Plain SETs and ZADDs through the client's own pipeline (a cluster pipeline groups them by node)."""
    pipe = client.pipeline(transaction=False)
    for key, value in rows.items():
        pipe.set(key, value, px=3_600_000)
    for key, members in seen.items():
        pipe.zadd(key, members)
    pipe.execute()


@pytest.fixture(scope="module")
def stores() -> Iterator[Stores]:
    base = load_settings()
    port = int(os.environ.get("FYP_TEST_REDIS_CLUSTER_PORT", base.redis_port + 60))
    with scratch_redis(base, port=port + 6) as (single_settings, _), scratch_cluster(base, port=port) as (
            cluster_settings, nodes):
        reader = FeatureClient(cluster_settings.redis_client())
        user_set, video_set = reader.plans["user"].feature_set, reader.plans["video"].feature_set
        now_ms = int(time.time() * 1000)
        header = now_ms.to_bytes(8, "little", signed=True) * 2
        rng = np.random.default_rng(11)
        rows = {user_set.key_prefix + f"u{i}": header + (rng.random(len(user_set.columns())) * 9).astype(
            "<f4").tobytes() for i in range(USERS)}
        video_ids = [f"v{i}" for i in range(VIDEOS)]
        rows |= {video_set.key_prefix + v: header + (rng.random(len(video_set.columns())) * 9).astype(
            "<f4").tobytes() for v in video_ids[:-20]}  # the last 20 have no features
        seen = {RECENT_SEEN.key_prefix + f"u{i}": {f"v{j}": now_ms - j for j in range(i * 3)}
                for i in range(1, USERS)}  # u0 has seen nothing
        cluster, single = cluster_settings.redis_client(), single_settings.redis_client()
        for client in (cluster, single):
            _write(client, rows, seen)
        for primary in cluster.get_primaries():  # the replicas hold every key before a test kills a primary
            cluster.execute_command("WAIT", 1, 5000, target_nodes=primary)
        yield Stores(cluster_settings=cluster_settings, nodes=nodes, cluster=cluster, single=single,
                     now_ms=now_ms, video_ids=video_ids)


def _same(a, b) -> None:
    assert (a.user is None) == (b.user is None)
    if a.user:
        assert a.user.values == pytest.approx(b.user.values, nan_ok=True)
    assert a.video_columns == b.video_columns
    np.testing.assert_array_equal(a.videos, b.videos)  # NaN rows (no features) compare equal too
    assert a.recent_seen == b.recent_seen


def test_feature_client_reads_the_same_on_the_cluster_as_on_a_single_redis(stores: Stores):
    on_cluster, on_single = FeatureClient(stores.cluster), FeatureClient(stores.single)
    assert on_cluster.cluster and not on_single.cluster
    picked = stores.video_ids[-500:]  # includes the 20 without features
    for user in ("u0", "u4", "nobody"):
        _same(on_cluster.for_request(user, picked, now_ms=stores.now_ms),
              on_single.for_request(user, picked, now_ms=stores.now_ms))
    ours = on_cluster.for_request("u4", picked, now_ms=stores.now_ms)
    assert np.isnan(ours.videos[-20:]).all() and not np.isnan(ours.videos[:-20]).any()
    assert len(ours.recent_seen) == 12
    for entity, entity_id in (("user", "u1"), ("video", "v3"), ("video", "v599")):  # video: two sets per entity
        assert on_cluster.get(entity, entity_id, now_ms=stores.now_ms) == on_single.get(
            entity, entity_id, now_ms=stores.now_ms)
    cols_c, matrix_c = on_cluster.matrix("video", picked, now_ms=stores.now_ms)
    cols_s, matrix_s = on_single.matrix("video", picked, now_ms=stores.now_ms)
    assert cols_c == cols_s
    np.testing.assert_array_equal(matrix_c, matrix_s)


def _gets_per_primary(cluster: RedisCluster) -> dict[str, int]:
    stats = cluster.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
    return {node: info.get("cmdstat_get", {}).get("calls", 0) for node, info in stats.items()}


def test_one_request_reads_every_primary_once_each(stores: Stores):
    reader = FeatureClient(stores.cluster)
    picked = stores.video_ids[:500]
    reader.for_request("u0", picked, now_ms=stores.now_ms)  # warm: connections to every node
    before = _gets_per_primary(stores.cluster)
    reader.for_request("u0", picked, now_ms=stores.now_ms)
    after = _gets_per_primary(stores.cluster)
    by_node: dict[str, int] = {}
    video_prefix = reader.plans["video"].feature_set.key_prefix
    for key in [reader.plans["user"].feature_set.key_prefix + "u0", *(video_prefix + v for v in picked)]:
        node = stores.cluster.get_node_from_key(key)
        by_node[node.name] = by_node.get(node.name, 0) + 1
    assert len(by_node) == 3, "the request's keys should span all three primaries"
    assert {node: after[node] - before[node] for node in after} == by_node


def test_scan_counts_see_every_node(stores: Stores):
    reader = FeatureClient(stores.cluster)
    prefixes = {name: reader.plans[name].feature_set.key_prefix for name in ("user", "video")}
    counts = feature_key_counts(stores.cluster_settings, prefixes)
    assert counts == {"user": USERS, "video": VIDEOS - 20}
    per_primary = [stores.cluster.dbsize(target_nodes=node) for node in stores.cluster.get_primaries()]
    assert len(per_primary) == 3 and all(n > 0 for n in per_primary)  # the keys counted lie on every primary
    assert sum(per_primary) == USERS + (VIDEOS - 20) + (USERS - 1)  # features and recent-seen sets


def test_a_killed_primary_is_replaced_and_reads_succeed_again(stores: Stores):
    reader = FeatureClient(stores.cluster_settings.redis_client())
    picked = stores.video_ids[:500]
    expected = reader.for_request("u2", picked, now_ms=stores.now_ms)
    victim_port = reader.redis.get_node_from_key(reader.plans["user"].feature_set.key_prefix + "u2").port
    victim = next(n for n in stores.nodes if n.address().endswith(f":{victim_port}"))
    pid = victim.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    assert reap(pid, timeout_s=10)  # this process started it: collect it, or it stays a zombie (test_zz_chaos)
    recovered_s = None
    while time.monotonic() - killed < 30:
        try:
            got = reader.for_request("u2", picked, now_ms=stores.now_ms)
        except (redis.RedisError, OSError):
            time.sleep(0.1)
            continue
        _same(got, expected)
        recovered_s = time.monotonic() - killed
        break
    print(f"\nprimary :{victim_port} SIGKILLed: reads succeed again after {recovered_s} s "
          f"(cluster-node-timeout {NODE_TIMEOUT_MS} ms)")
    assert recovered_s is not None, "reads did not succeed within 30 s of the primary's death"
    assert recovered_s < NODE_TIMEOUT_MS / 1000 + 10
    new_primary = reader.redis.get_node_from_key(reader.plans["user"].feature_set.key_prefix + "u2")
    assert new_primary.port != victim_port
    victim.start()  # it rejoins from its nodes.conf, now as a replica
    assert victim.health().healthy, victim.health().detail
    assert "replica" in victim.health().detail


def test_candidate_sets_are_written_and_read_on_the_cluster(stores: Stores):
    """write_sets' MULTI/EXEC (one key per transaction on a cluster) and RedisSources' reads (one round trip per
    step, grouped by primary), over keys in different slots (the following set stands in for the follow graph job's
    write)."""
    sets = {"cowatch": pa.table({"x": ["c1", "c1", "c2"], "y": ["c2", "c3", "c1"], "strength": [3.0, 1.0, 2.0]})}
    write_sets(stores.cluster, sets, ttl=timedelta(minutes=5))
    keys = [COWATCH_KEY.format(video_id="c1"), COWATCH_KEY.format(video_id="c2"), following_key("cu1"),
            USER_MARKET.key_prefix + "cu1"]
    assert len({stores.cluster.keyslot(k) for k in keys}) == len(keys)  # the reads span slots
    sources = RedisSources(stores.cluster)
    stores.cluster.zadd(USER_MARKET.key_prefix + "cu1", {"US:en": 1.0})  # the features job's write
    stores.cluster.zadd(following_key("cu1"), {"a1": 1.0, "a2": 2.0})  # the follow graph job's write
    try:
        seen, follows, market = sources.user_context("cu1")
    finally:
        stores.cluster.delete(USER_MARKET.key_prefix + "cu1")
        stores.cluster.delete(following_key("cu1"))
    assert (seen, follows, market) == ([], {"a1", "a2"}, "US:en")
    assert [c.video_id for c in sources.cowatch(["c1", "c2"], 5)][:1] == ["c2"]
