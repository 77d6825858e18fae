"""Redis Cluster for the cluster profile: six Debian redis-server nodes (3 primaries + 3 replicas) on loopback.

Each node is a `ProcessService` of its own (`redis-0` .. `redis-5`, at `Settings.redis_cluster_nodes`): its own
pid file, log, directory and `fyp status` row, so a node that died shows as such and `fyp up redis-3` restarts
just it (it rejoins from its `nodes.conf`). The cluster is created once, by whichever node's start finds all six
running and none of them joined yet (`redis-cli --cluster create`); a formed cluster is never created again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fyp.config import Settings
from fyp.stack.process import StackError, wait_until
from fyp.stack.redis_server import RedisService, redis_server_binary, scratch_services, write_config
from fyp.stack.service import ProcessService

__all__ = ["NODE_TIMEOUT_MS", "RedisNodeService", "ensure_cluster", "primary_ports", "redis_services",
           "scratch_cluster"]

# How long a primary may be unreachable before its replica is promoted. Short, so that a failover takes seconds
# on a laptop and in tests; a production cluster on a real network wants more (its default is 15000).
NODE_TIMEOUT_MS = 3000
CLUSTER_BUS_OFFSET = 10000  # Redis Cluster's node-to-node port is the client port + 10000
CLUSTER_NODES = 6


def redis_services(settings: Settings) -> list[ProcessService]:
    """The Redis of this profile: one `RedisService`, or one `RedisNodeService` per cluster node."""
    if not settings.redis_cluster_nodes:
        return [RedisService(settings)]
    return [RedisNodeService(settings, index) for index in range(len(settings.redis_cluster_nodes))]


def _node_client(settings: Settings, host: str, port: int) -> redis.Redis:
    """A plain connection to one node (not the cluster client): node-local commands such as CLUSTER INFO."""
    # No retries: redis-py's default backoff would make a node that is not up yet cost seconds to find out.
    return redis.Redis(host=host, port=port, password=settings.redis_password, socket_timeout=2,
                       decode_responses=True, retry=Retry(NoBackoff(), 0))


class RedisNodeService(ProcessService):
    start_timeout_s = 20.0

    def __init__(self, settings: Settings, index: int) -> None:
        super().__init__(settings)
        self.index = index
        self.name = f"redis-{index}"
        self.host, self.port = settings.redis_cluster_nodes[index]
        self._starting = False

    def address(self) -> str:
        return f"redis://{self.host}:{self.port}"

    def ports(self) -> Sequence[int]:
        return [self.port, self.port + CLUSTER_BUS_OFFSET]

    @property
    def config_file(self):
        return self.home / "redis.conf"

    def prepare(self) -> None:
        # masterauth: a replica authenticates to its primary with the password clients use. A replica's first
        # sync starts at once (repl-diskless-sync-delay 0; the default waits 5 s to batch replicas).
        write_config(self.config_file, self.settings, port=self.port, extra=(
            f"masterauth {self.settings.redis_password}\ncluster-enabled yes\ncluster-config-file nodes.conf\n"
            f"cluster-node-timeout {NODE_TIMEOUT_MS}\nrepl-diskless-sync-delay 0\n"))

    def command(self) -> Sequence[str]:
        return [redis_server_binary(), str(self.config_file)]

    def start(self) -> None:
        # While starting, a node that answers is enough: the cluster it belongs to may not exist yet (it is
        # created in `after_start`), or be re-forming around it after a restart.
        self._starting = True
        try:
            super().start()
        finally:
            self._starting = False

    def after_start(self) -> None:
        ensure_cluster(self.settings)

    def check(self) -> str:
        client = _node_client(self.settings, self.host, self.port)
        if self._starting:
            client.ping()
            return "started"
        info = _cluster_info(client)
        if info["cluster_state"] != "ok":
            raise StackError(f"cluster_state {info['cluster_state']} (known nodes {info['cluster_known_nodes']})")
        replication = client.info("replication")
        role = "primary" if replication["role"] == "master" else f"replica of :{replication.get('master_port')}"
        primaries = ", ".join(f":{port}" for port in _primary_ports(client))
        return f"{role}, {client.dbsize()} keys; cluster_state ok, primaries {primaries}"


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    """CLUSTER INFO of one node, as redis-py parses it: {field: value}."""
    return client.execute_command("CLUSTER INFO")


def _primary_ports(client: redis.Redis) -> list[int]:
    """The client ports of the primaries that hold slots, as this node sees the cluster."""
    nodes = client.execute_command("CLUSTER NODES")  # redis-py parses it: {"host:port": {"flags": ...}}
    return sorted(int(address.rsplit(":", 1)[1]) for address, node in nodes.items()
                  if "master" in node["flags"] and "fail" not in node["flags"] and node["slots"])


def primary_ports(settings: Settings, *, exclude: int | None = None) -> list[int]:
    """The slot-holding primaries as the first answering node (other than port `exclude`) sees them; [] if none
    answers."""
    for host, port in settings.redis_cluster_nodes:
        if port == exclude:
            continue
        try:
            client = _node_client(settings, host, port)
            if _cluster_info(client).get("cluster_state") == "ok":
                return _primary_ports(client)
        except redis.RedisError:
            continue
    return []


def ensure_cluster(settings: Settings, *, timeout_s: float = 30.0) -> None:
    """Create the cluster once every node runs and none has joined one; then wait for `cluster_state:ok`.

    Does nothing while some node is down (a later start finishes the job) and nothing to a cluster that formed
    already, whose nodes find each other again from their `nodes.conf`."""
    nodes = settings.redis_cluster_nodes
    if any(RedisNodeService(settings, i).pid() is None for i in range(len(nodes))):
        return  # not all of them run yet: the last one to start creates the cluster
    clients = [_node_client(settings, host, port) for host, port in nodes]
    try:
        known = [int(_cluster_info(c)["cluster_known_nodes"]) for c in clients]
    except redis.ConnectionError:
        return  # not all six are up yet
    if all(k == 1 for k in known):
        _create(settings)
    elif any(k == 1 for k in known):
        lone = [f"{host}:{port}" for (host, port), k in zip(nodes, known, strict=True) if k == 1]
        raise StackError(f"Redis Cluster nodes {', '.join(lone)} belong to no cluster while the others form one; "
                         f"stop the stack and delete their folders under {settings.data_dir} to rejoin them")
    if not wait_until(lambda: all(_ready(c) for c in clients), timeout_s=timeout_s):
        raise StackError(f"Redis Cluster did not reach cluster_state ok with every replica in sync within "
                         f"{timeout_s:.0f} s; read {settings.logs_dir}/redis-*.log")


def _ready(client: redis.Redis) -> bool:
    """cluster_state ok and, for a replica, its link to the primary up: a replica that never synced refuses to
    take over (its data would be too old), so until then a primary's death would lose its slots."""
    replication = client.info("replication")
    synced = replication["role"] == "master" or replication.get("master_link_status") == "up"
    return synced and _cluster_info(client)["cluster_state"] == "ok"


def _create(settings: Settings) -> None:
    """`redis-cli --cluster create`: the first half of the nodes become primaries, each other node a replica."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise StackError("redis-cli is missing: apt-get install redis-tools (redis-server depends on it)")
    replicas = 1 if len(settings.redis_cluster_nodes) >= 6 else 0  # Redis Cluster needs 3 primaries at least
    argv = [cli, "--cluster", "create", *(f"{h}:{p}" for h, p in settings.redis_cluster_nodes),
            "--cluster-replicas", str(replicas), "--cluster-yes"]
    env: Mapping[str, str] = {**os.environ, "REDISCLI_AUTH": settings.redis_password}  # never in argv (ps)
    done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0 or "[OK]" not in done.stdout:
        raise StackError(f"redis-cli --cluster create failed ({done.returncode}):\n{done.stdout[-2000:]}"
                         f"{done.stderr[-1000:]}")


def scratch_cluster(settings: Settings, *, port: int):
    """A throw-away Redis Cluster at ports `port` .. `port + 5` with `settings`' password (`scratch_services`):
    yields (its settings, its node services)."""
    nodes = tuple((settings.redis_host, port + i) for i in range(CLUSTER_NODES))
    return scratch_services(settings, redis_services, profile="cluster", redis_port=port, redis_cluster_nodes=nodes)
