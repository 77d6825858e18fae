"""The feed's two Redis reads (fyp/feed/reads.py over fyp/serving/roundtrip.py) on a real Redis Cluster: six
redis-server processes (3 primaries + 3 replicas) started by `scratch_cluster`, beside a scratch single Redis
holding the same keys, both reached through `Settings.redis_client` (the project's one client factory).

Only Redis runs here (no Kafka, no Flink): what is shown is the read path. The two reads answer the same on the
cluster as on the single Redis, with keys on every primary (so no multi-key command crossed a slot, or the cluster
would have refused it with CROSSSLOT). The ports: FYP_TEST_FEED_CLUSTER_PORT (default: this stack's Redis port +
70) and the 6 after it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from connectors.redis_video_store import video_key
from features.serving_sets import NOT_INTERESTED_AUTHORS, NOT_INTERESTED_VIDEOS, RECENT_SEEN
from fyp.config import load_settings
from fyp.feed.profiles import profile_key
from fyp.feed.reads import VIDEO_PLAN, read_filter_state, read_ranker_columns, records_in_order
from fyp.ranking.lake import ranker_sets
from fyp.stack.redis_cluster import scratch_cluster
from fyp.stack.redis_server import scratch_redis

pytestmark = pytest.mark.integration

VIDEOS = 500


def _fill(client, now_ms: int) -> None:
    rng = np.random.default_rng(5)
    header = now_ms.to_bytes(8, "little", signed=True) * 2
    pipe = client.pipeline(transaction=False)  # single-key writes; a cluster pipeline groups them by node
    for i in range(VIDEOS):
        video = f"fc-v{i}"
        if i % 10:  # every tenth video has no catalogue record
            pipe.hset(video_key(video), mapping={
                "status": "removed" if i % 7 == 0 else "ready", "author_id": f"fc-a{i % 40}",
                "sound_id": f"fc-s{i % 9}", "hashtags": json.dumps(["cats", f"t{i % 5}"]),
                **({"actions": '["AGE_RESTRICT"]'} if i % 11 == 0 else {})})
        if i % 13:
            row = (rng.random(len(VIDEO_PLAN.columns)) * 50).astype("<f4")
            pipe.set(VIDEO_PLAN.feature_set.key_prefix + video, header + row.tobytes())
    pipe.zadd(RECENT_SEEN.key_prefix + "fc-u", {f"fc-v{i}": i for i in range(0, VIDEOS, 4)})
    pipe.zadd(NOT_INTERESTED_VIDEOS.key_prefix + "fc-u", {"fc-v1": 1})
    pipe.zadd(NOT_INTERESTED_AUTHORS.key_prefix + "fc-u", {"fc-a3": 2, "fc-a5": 1})
    pipe.hset(profile_key("fc-u"), "birth_date", "1990-01-01")
    pipe.execute()


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[RedisCluster, object, int]]:
    base = load_settings()
    port = int(os.environ.get("FYP_TEST_FEED_CLUSTER_PORT", base.redis_port + 70))
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    with scratch_redis(base, port=port + 6) as (single_settings, _), scratch_cluster(base, port=port) as (
            cluster_settings, _):
        cluster, single = cluster_settings.redis_client(), single_settings.redis_client()
        assert isinstance(cluster, RedisCluster)
        for client in (cluster, single):
            _fill(client, now_ms)
        yield cluster, single, now_ms


def test_the_filter_read_is_the_same_on_a_cluster(clients) -> None:
    cluster, single, now_ms = clients
    ids = [f"fc-v{i}" for i in range(VIDEOS)]
    keys = [video_key(v) for v in ids] + [RECENT_SEEN.key_prefix + "fc-u", profile_key("fc-u")]
    primaries = {cluster.get_node_from_key(k).name for k in keys}
    assert len(primaries) == 3 and len({key_slot(k.encode()) for k in keys}) > 400  # spread over every primary
    on_cluster = read_filter_state(cluster, "fc-u", ids, now_ms=now_ms)
    on_single = read_filter_state(single, "fc-u", ids, now_ms=now_ms)
    assert on_cluster.user == on_single.user and on_cluster.records == on_single.records
    np.testing.assert_array_equal(on_cluster.video_features, on_single.video_features)
    # And what was written is what was read.
    assert on_cluster.viewer_age == "adult"
    assert len(on_cluster.user.recent_seen) == VIDEOS // 4
    assert on_cluster.user.not_interested_authors == {"fc-a3": 2.0, "fc-a5": 1.0}
    assert not on_cluster.records["fc-v10"].exists and on_cluster.records["fc-v7"].status == "removed"
    assert on_cluster.records["fc-v11"].age_restricted and not on_cluster.records["fc-v12"].age_restricted
    assert on_cluster.records["fc-v12"].hashtags == ("cats", "t2")
    assert np.isnan(on_cluster.video_features[13]).all() and not np.isnan(on_cluster.video_features[12]).any()


def test_the_ranker_read_is_the_same_on_a_cluster(clients) -> None:
    cluster, single, now_ms = clients
    ids = [f"fc-v{i}" for i in range(100)]
    state = read_filter_state(single, "fc-u", ids, now_ms=now_ms)
    records = records_in_order(state.records, ids)
    names = tuple(name for name, _ in ranker_sets())
    read_ranker_columns(cluster, names, "fc-u", records, now_ms=now_ms)  # warm: a connection to every primary
    started = time.perf_counter()
    on_cluster = read_ranker_columns(cluster, names, "fc-u", records, now_ms=now_ms)
    took_ms = (time.perf_counter() - started) * 1000
    on_single = read_ranker_columns(single, names, "fc-u", records, now_ms=now_ms)
    assert on_cluster.keys() == on_single.keys()
    for column, values in on_cluster.items():
        np.testing.assert_array_equal(values, on_single[column], err_msg=column)
    video_column = f"{VIDEO_PLAN.feature_set.name}__{VIDEO_PLAN.columns[0]}"
    assert not np.isnan(on_cluster[video_column][12]) and np.isnan(on_cluster[video_column][13])
    print(f"\nranker read on the cluster: {took_ms:.1f} ms for 1 user + 100 videos (load {os.getloadavg()[0]:.1f})")
