"""The profile in Settings (fyp/config.py): single by default, cluster from FYP_PROFILE or `$FYP_HOME/profile`."""

from __future__ import annotations

import pytest

from fyp.config import load_settings, write_profile


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in ("FYP_PROFILE", "FYP_REDIS_CLUSTER_NODES", "FYP_KAFKA_BROKERS", "FYP_KAFKA_REPLICATION_FACTOR",
                 "FYP_KAFKA_SASL_MECHANISM",
                 "FYP_KAFKA_MIN_INSYNC_REPLICAS", "FYP_TASKMANAGERS", "FYP_PORT_OFFSET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FYP_HOME", str(tmp_path / "home"))
    load_settings.cache_clear()
    yield tmp_path / "home"
    load_settings.cache_clear()


def test_single_is_the_default_and_looks_as_before(home):
    s = load_settings()
    assert (s.profile, s.is_cluster, s.redis_cluster_nodes) == ("single", False, ())
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert (s.kafka_replication_factor, s.kafka_min_insync_replicas, s.taskmanagers) == (1, 1, 1)


def test_the_profile_file_makes_every_later_command_see_the_cluster(home):
    write_profile(home, "cluster")
    load_settings.cache_clear()
    s = load_settings()
    assert s.is_cluster
    assert s.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9102,127.0.0.1:9112"
    assert s.redis_cluster_nodes == tuple(("127.0.0.1", 6379 + i) for i in range(6))
    assert (s.kafka_replication_factor, s.kafka_min_insync_replicas, s.taskmanagers) == (3, 2, 2)


def test_the_environment_wins_and_names_a_deployment_s_own_nodes(home, monkeypatch):
    write_profile(home, "single")
    monkeypatch.setenv("FYP_PROFILE", "cluster")
    monkeypatch.setenv("FYP_REDIS_CLUSTER_NODES", "redis-0.redis:6379,redis-1.redis:6379")
    monkeypatch.setenv("FYP_KAFKA_BROKERS", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("FYP_TASKMANAGERS", "4")
    load_settings.cache_clear()
    s = load_settings()
    assert s.redis_cluster_nodes == (("redis-0.redis", 6379), ("redis-1.redis", 6379))
    assert s.kafka_bootstrap == "kafka-0:9092,kafka-1:9092" and s.taskmanagers == 4


@pytest.mark.parametrize(("name", "value", "message"), [
    ("FYP_PROFILE", "mesh", "not one of single, cluster"),
    ("FYP_REDIS_CLUSTER_NODES", "redis-0", "is not host:port"),
    ("FYP_TASKMANAGERS", "0", "not a positive whole number"),
])
def test_a_bad_value_is_a_clear_error(home, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    load_settings.cache_clear()
    with pytest.raises(ValueError, match=message):
        load_settings()


def test_a_cluster_client_refuses_what_only_a_single_redis_has(home, monkeypatch):
    monkeypatch.setenv("FYP_PROFILE", "cluster")
    load_settings.cache_clear()
    with pytest.raises(ValueError, match="Redis Cluster has no db"):
        load_settings().redis_client(db=3)


def test_the_sasl_mechanism_reaches_both_kinds_of_client(home, monkeypatch):
    from connectors.kafka_options import flink_kafka_properties

    single = load_settings()
    assert single.kafka_client_config()["sasl.mechanisms"] == "PLAIN"
    assert ".plain.PlainLoginModule required" in flink_kafka_properties(single)["properties.sasl.jaas.config"]
    monkeypatch.setenv("FYP_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    load_settings.cache_clear()
    scram = load_settings()
    assert scram.kafka_client_config()["sasl.mechanisms"] == "SCRAM-SHA-512"
    flink = flink_kafka_properties(scram)
    assert flink["properties.sasl.mechanism"] == "SCRAM-SHA-512"
    assert flink["properties.sasl.jaas.config"].startswith(
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required")
    monkeypatch.setenv("FYP_KAFKA_SASL_MECHANISM", "GSSAPI")
    load_settings.cache_clear()
    with pytest.raises(ValueError, match="not one of PLAIN"):
        load_settings()
