"""The Redis sink tables' connection options: a single Redis, or a Redis Cluster in the cluster profile."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from connectors.redis_feature_sink import redis_feature_sink, redis_sorted_set_sink
from features.engagement import video_engagement
from fyp.config import Settings, load_settings


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("FYP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FYP_PROFILE", raising=False)
    monkeypatch.delenv("FYP_REDIS_CLUSTER_NODES", raising=False)
    load_settings.cache_clear()
    yield load_settings()
    load_settings.cache_clear()


def _sinks(settings: Settings) -> list[dict[str, str]]:
    zset = redis_sorted_set_sink(settings, key_prefix="t:", key_columns=("k",), member_column="m",
                                 score_column="s", max_size=10, ttl=timedelta(hours=1))
    return [redis_feature_sink(settings, video_engagement.v1).get_options(), zset.get_options()]


def test_single_redis_sinks_name_host_and_port_only(settings):
    for options in _sinks(settings):
        assert options["host"] == settings.redis_host and options["port"] == str(settings.redis_port)
        assert options["password-env"] == "FYP_REDIS_PASSWORD" and "password" not in options
        assert "cluster.nodes" not in options


def test_cluster_profile_sinks_pass_every_startup_node(settings):
    cluster = dataclasses.replace(settings, redis_cluster_nodes=(("127.0.0.1", 7000), ("127.0.0.2", 7001)))
    for options in _sinks(cluster):
        assert options["cluster.nodes"] == "127.0.0.1:7000,127.0.0.2:7001"
        assert options["password-env"] == "FYP_REDIS_PASSWORD"
