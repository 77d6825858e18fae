"""The cluster profile's Redis: six node services with their own config, ports and `fyp up/down` names, and the
cluster created with the password in the environment (not argv). The real cluster: tests/integration/
test_redis_cluster.py."""

from __future__ import annotations

import subprocess

import pytest

from fyp.config import load_settings, write_profile
from fyp.stack import redis_cluster
from fyp.stack.redis_cluster import NODE_TIMEOUT_MS, RedisNodeService, redis_services
from fyp.stack.redis_server import RedisService
from fyp.stack.services import all_services, select


@pytest.fixture
def cluster_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("FYP_PROFILE", raising=False)
    monkeypatch.delenv("FYP_REDIS_CLUSTER_NODES", raising=False)
    monkeypatch.setenv("FYP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FYP_PORT_OFFSET", "1000")
    write_profile(tmp_path / "home", "cluster")
    load_settings.cache_clear()
    yield load_settings()
    load_settings.cache_clear()


def test_the_cluster_profile_runs_six_nodes_in_place_of_the_single_redis(cluster_settings):
    nodes = redis_services(cluster_settings)
    assert [n.name for n in nodes] == [f"redis-{i}" for i in range(6)]
    assert [n.ports() for n in nodes] == [[cluster_settings.redis_port + i, cluster_settings.redis_port + i + 10000]
                                          for i in range(6)]
    names = [s.name for s in all_services(cluster_settings)]
    assert "redis" not in names and names[names.index("redis-0"):names.index("redis-0") + 6] == [n.name for n in nodes]
    assert [s.name for s in select(cluster_settings, ["redis"])] == [n.name for n in nodes]
    assert [s.name for s in select(cluster_settings, ["redis-3"])] == ["redis-3"]
    with pytest.raises(ValueError, match="unknown service redis-9"):
        select(cluster_settings, ["redis-9"])


def test_the_single_profile_keeps_one_redis(cluster_settings, monkeypatch):
    monkeypatch.setenv("FYP_PROFILE", "single")
    load_settings.cache_clear()
    services = redis_services(load_settings())
    assert len(services) == 1 and isinstance(services[0], RedisService)


def test_a_node_config_has_the_password_cluster_mode_and_its_own_dir(cluster_settings):
    node = RedisNodeService(cluster_settings, 4)
    node.home.mkdir(parents=True)
    node.prepare()
    text = node.config_file.read_text()
    password = cluster_settings.redis_password
    for line in (f"requirepass {password}", f"masterauth {password}", "cluster-enabled yes", "bind 127.0.0.1",
                 f"port {cluster_settings.redis_port + 4}", f"dir {node.home}",
                 f"cluster-node-timeout {NODE_TIMEOUT_MS}"):
        assert line in text.splitlines()
    assert node.home.name == "redis-4" and oct(node.config_file.stat().st_mode & 0o777) == "0o600"


def test_the_cluster_is_created_with_the_password_in_the_environment(cluster_settings, monkeypatch):
    calls = []

    def run(argv, **kwargs):
        calls.append((argv, kwargs["env"]))
        return subprocess.CompletedProcess(argv, 0, stdout="[OK] All 16384 slots covered.", stderr="")

    monkeypatch.setattr(redis_cluster.subprocess, "run", run)
    redis_cluster._create(cluster_settings)
    (argv, env), = calls
    assert cluster_settings.redis_password not in " ".join(argv)
    assert env["REDISCLI_AUTH"] == cluster_settings.redis_password
    assert argv[-3:] == ["--cluster-replicas", "1", "--cluster-yes"] and len(argv) == 3 + 6 + 3
