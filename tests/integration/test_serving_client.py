"""FeatureClient's single-entity read on a real Redis: the value written is the value read, on the dedicated
connection's lean path, after that connection is killed under it, and through a pooled client."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
import redis

from features import feature_set_for_entity
from fyp.bench.peers.redis_writer import PackedFeatureWriter
from fyp.config import Settings
from fyp.serving import FeatureClient

DB = 13  # never 0, the job's


@pytest.fixture
def user_rows(settings: Settings) -> Iterator[tuple[redis.Redis, dict[str, np.ndarray], int]]:
    client = redis.Redis(host=settings.redis_host, port=settings.redis_port, password=settings.redis_password, db=DB)
    client.flushdb()
    user_set = feature_set_for_entity("user")
    now_ms = int(time.time() * 1000)
    rng = np.random.default_rng(3)
    rows = {f"u{i}": (rng.random(len(user_set.columns()), dtype=np.float32) * 100) for i in range(3)}
    header = now_ms.to_bytes(8, "little", signed=True) * 2
    PackedFeatureWriter(client, user_set).write({u: header + row.astype("<f4").tobytes() for u, row in rows.items()})
    yield client, rows, now_ms
    client.flushdb()


def _expect(features, row: np.ndarray) -> None:
    assert features is not None
    columns = feature_set_for_entity("user").columns()
    assert np.allclose([features.values[c] for c in columns], row, rtol=1e-6)


def _refuse(*args, **kwargs):
    raise AssertionError("the single-entity read went through Redis.execute_command")


def test_a_single_read_returns_what_was_written_and_survives_a_killed_connection(settings, user_rows, monkeypatch):
    admin, rows, now_ms = user_rows
    client = FeatureClient.from_settings(settings, db=DB)
    with monkeypatch.context() as patched:  # the lean path: past redis-py's per-command wrapper
        patched.setattr(client.redis, "execute_command", _refuse)
        _expect(client.get("user", "u0", now_ms=now_ms), rows["u0"])
        assert client.get("user", "nobody", now_ms=now_ms) is None

    # Kill the client's connection from the server side: the next read reconnects instead of failing.
    own_id = client.redis.client_id()
    assert admin.client_kill_filter(_id=own_id) == 1
    _expect(client.get("user", "u1", now_ms=now_ms), rows["u1"])
    assert client.redis.client_id() != own_id


def test_a_pooled_client_reads_the_same_values(settings, user_rows):
    _, rows, now_ms = user_rows
    pooled = redis.Redis(host=settings.redis_host, port=settings.redis_port, password=settings.redis_password, db=DB)
    _expect(FeatureClient(pooled).get("user", "u2", now_ms=now_ms), rows["u2"])
