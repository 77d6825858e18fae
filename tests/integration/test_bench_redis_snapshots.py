"""`fyp bench throughput --pause-redis-snapshots` on the stack's Redis: no snapshot policy inside the block, the
previous one back after it, also when the block fails."""

from __future__ import annotations

import pytest
import redis

from fyp.bench.throughput import redis_snapshots_paused
from fyp.config import Settings


def test_snapshots_pause_inside_and_the_policy_comes_back(settings: Settings, redis_client: redis.Redis) -> None:
    before = redis_client.config_get("save")["save"]
    assert before, "the stack's Redis is configured to snapshot (redis.conf `save`)"
    with redis_snapshots_paused(settings, True):
        assert redis_client.config_get("save")["save"] == ""
    assert redis_client.config_get("save")["save"] == before
    with pytest.raises(RuntimeError), redis_snapshots_paused(settings, True):
        raise RuntimeError("a round failed")
    assert redis_client.config_get("save")["save"] == before
    with redis_snapshots_paused(settings, False):
        assert redis_client.config_get("save")["save"] == before
