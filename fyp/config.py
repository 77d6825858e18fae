"""Where the local stack lives and how to reach it: one frozen `Settings`, built from the environment.

Precedence for every value: environment variable, then `$FYP_HOME/credentials.env` (secrets only, written
once with random values on first use, mode 0600), then the default here. Nothing secret is a default.

The profile says whether the installation is one process per service ("single", the default) or real clusters
("cluster": Kafka brokers, Redis Cluster nodes, several TaskManagers). It comes from `FYP_PROFILE`, else from
`$FYP_HOME/profile` (written by `fyp up --cluster`), so every command finds the cluster that `fyp up` started
without a flag of its own. Everything that differs between the two follows from the fields below.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

__all__ = ["PROFILES", "REPO_ROOT", "Settings", "load_settings", "read_profile", "write_profile"]

REPO_ROOT = Path(__file__).resolve().parents[1]

PROFILES = ("single", "cluster")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
CLUSTER_REDIS_NODES = 6  # 3 primaries + 3 replicas
CLUSTER_KAFKA_BROKERS = 3
KAFKA_BROKER_PORT_STEP = 10  # broker i listens on kafka_port + 10*i, its controller on kafka_controller_port + 10*i

_SECRET_NAMES = ("FYP_KAFKA_PASSWORD", "FYP_REDIS_PASSWORD", "FYP_S3_ACCESS_KEY", "FYP_S3_SECRET_KEY")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Addresses, credentials and directories of one fyp installation."""

    home: Path
    host: str  # where the local stack binds; clients use the per-service hosts below
    kafka_host: str
    redis_host: str
    s3_host: str
    iceberg_rest_host: str
    flink_host: str
    kafka_port: int
    kafka_controller_port: int
    redis_port: int
    s3_port: int
    iceberg_rest_port: int
    flink_rest_port: int
    flink_rpc_port: int
    flink_blob_port: int
    flink_metrics_port: int
    seaweed_master_port: int
    seaweed_volume_port: int
    seaweed_filer_port: int
    kafka_user: str
    kafka_password: str
    redis_password: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    warehouse_bucket: str
    media_bucket: str
    profile: str = "single"
    # Redis Cluster: the nodes a client starts from (it learns the rest); empty for a single Redis.
    redis_cluster_nodes: tuple[tuple[str, int], ...] = ()
    # Kafka: every broker's client address (the first is kafka_host:kafka_port), and what new topics get.
    kafka_brokers: tuple[tuple[str, int], ...] = ()
    # SASL mechanism of the client listener: PLAIN locally, SCRAM-SHA-512 with Strimzi (deploy/kubernetes).
    kafka_sasl_mechanism: str = "PLAIN"
    kafka_replication_factor: int = 1
    kafka_min_insync_replicas: int = 1
    taskmanagers: int = 1
    # Flink checkpoints and savepoints in the cluster profile: s3://<flink_state_bucket>/flink/...
    flink_state_bucket: str = "flink-state"
    # Share of ranking requests whose served features are logged (fyp/serving/served_log.py), 0..1.
    served_log_sample_rate: float = 0.01

    @property
    def is_cluster(self) -> bool:
        return self.profile == "cluster"

    @property
    def kafka_bootstrap(self) -> str:
        """Every broker, comma-separated, as Kafka clients take `bootstrap.servers`."""
        brokers = self.kafka_brokers or ((self.kafka_host, self.kafka_port),)
        return ",".join(f"{host}:{port}" for host, port in brokers)

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.s3_host}:{self.s3_port}"

    @property
    def iceberg_rest_uri(self) -> str:
        return f"http://{self.iceberg_rest_host}:{self.iceberg_rest_port}"

    @property
    def flink_rest_url(self) -> str:
        return f"http://{self.flink_host}:{self.flink_rest_port}"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def redis_client(self, **options: Any) -> redis.Redis | RedisCluster:
        """The one way every process reaches Redis: this installation's address and password, plus `options`
        (`socket_timeout`, `decode_responses`, ...) passed to redis-py as they are.

        With `redis_cluster_nodes`, a `RedisCluster` that starts from those nodes and follows MOVED/ASK and
        failovers; options that only a single Redis has (`db`, `single_connection_client`) are refused there."""
        if not self.redis_cluster_nodes:
            return redis.Redis(host=self.redis_host, port=self.redis_port, password=self.redis_password, **options)
        single_only = sorted({"db", "single_connection_client"} & set(options))
        if single_only:
            raise ValueError(f"Redis Cluster has no {', '.join(single_only)}")
        nodes = [ClusterNode(host, port) for host, port in self.redis_cluster_nodes]
        return RedisCluster(startup_nodes=nodes, password=self.redis_password, **options)

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) settings for the SASL client listener (`kafka_sasl_mechanism`)."""
        return {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": self.kafka_sasl_mechanism,
            "sasl.username": self.kafka_user,
            "sasl.password": self.kafka_password,
        }

    def kafka_producer_config(self) -> dict[str, Any]:
        """`kafka_client_config()` for a producer: idempotent, acks=all, and the Java clients' key -> partition
        mapping (murmur2). librdkafka's default (CRC32) would put a video's worker records on another partition
        than the Flink jobs' records for the same key, and a reader would see its lifecycle out of order."""
        return {**self.kafka_client_config(), "enable.idempotence": True, "acks": "all",
                "partitioner": "murmur2_random"}

    def iceberg_catalog_properties(self) -> dict[str, str]:
        """pyiceberg REST catalog properties for the SeaweedFS catalog (SigV4-signed, service s3tables)."""
        return {
            "type": "rest",
            "uri": self.iceberg_rest_uri,
            "warehouse": f"s3://{self.warehouse_bucket}/",
            "s3.endpoint": self.s3_endpoint,
            "s3.access-key-id": self.s3_access_key,
            "s3.secret-access-key": self.s3_secret_key,
            "s3.region": self.s3_region,
            "rest.sigv4-enabled": "true",
            "rest.signing-region": self.s3_region,
            "rest.signing-name": "s3tables",
            "client.access-key-id": self.s3_access_key,
            "client.secret-access-key": self.s3_secret_key,
            "client.region": self.s3_region,
        }


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def _ensure_secrets(home: Path) -> dict[str, str]:
    """Secrets from the environment, else from credentials.env, generating the missing ones once."""
    path = home / "credentials.env"
    stored = _read_env_file(path)
    missing = [n for n in _SECRET_NAMES if n not in os.environ and n not in stored]
    if missing:
        home.mkdir(parents=True, exist_ok=True)
        for name in missing:
            stored[name] = secrets.token_hex(8) if name == "FYP_S3_ACCESS_KEY" else secrets.token_urlsafe(24)
        path.write_text("".join(f"{k}={v}\n" for k, v in sorted(stored.items())))
        path.chmod(0o600)
    return {n: os.environ.get(n, stored.get(n, "")) for n in _SECRET_NAMES}


def _port(name: str, default: int) -> int:
    """A port from `name`, else `default` shifted by FYP_PORT_OFFSET (a second stack beside the first)."""
    offset = int(os.environ.get("FYP_PORT_OFFSET", "0"))
    raw = os.environ.get(name, str(default + offset))
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a port number") from exc


def read_profile(home: Path) -> str:
    """`FYP_PROFILE`, else what `fyp up --cluster` wrote into `$FYP_HOME/profile`, else "single"."""
    stored = home / "profile"
    profile = os.environ.get("FYP_PROFILE") or (stored.read_text().strip() if stored.exists() else "single")
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} (FYP_PROFILE or {stored}) is not one of {', '.join(PROFILES)}")
    return profile


def write_profile(home: Path, profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    home.mkdir(parents=True, exist_ok=True)
    (home / "profile").write_text(profile + "\n")


def _addresses(name: str, default: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port` from `name` (a deployment's own nodes), else `default`."""
    raw = os.environ.get(name)
    if not raw:
        return default
    found = []
    for item in raw.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{name}: {item!r} is not host:port")
        found.append((host, int(port)))
    return tuple(found)


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _fraction(name: str, default: float) -> float:
    raw = os.environ.get(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={raw!r} is not a number between 0 and 1")
    return value


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name}={raw!r} is not a positive whole number")
    return int(raw)


@cache
def load_settings() -> Settings:
    """Settings for this process; `FYP_HOME` (default `<repo>/.fyp`) holds state, logs and credentials."""
    home = Path(os.environ.get("FYP_HOME", REPO_ROOT / ".fyp")).resolve()
    found = _ensure_secrets(home)
    host = os.environ.get("FYP_HOST", "127.0.0.1")
    profile = read_profile(home)
    cluster = profile == "cluster"
    kafka_host = os.environ.get("FYP_KAFKA_HOST", host)
    kafka_port = _port("FYP_KAFKA_PORT", 9092)
    redis_host = os.environ.get("FYP_REDIS_HOST", host)
    redis_port = _port("FYP_REDIS_PORT", 6379)
    brokers = CLUSTER_KAFKA_BROKERS if cluster else 1
    # In docker-compose every service has its own host name; locally they all share FYP_HOST.
    return Settings(
        home=home,
        host=host,
        kafka_host=kafka_host,
        redis_host=redis_host,
        s3_host=os.environ.get("FYP_S3_HOST", host),
        iceberg_rest_host=os.environ.get("FYP_ICEBERG_REST_HOST", host),
        flink_host=os.environ.get("FYP_FLINK_HOST", host),
        kafka_port=kafka_port,
        kafka_controller_port=_port("FYP_KAFKA_CONTROLLER_PORT", 9093),
        redis_port=redis_port,
        s3_port=_port("FYP_S3_PORT", 8333),
        iceberg_rest_port=_port("FYP_ICEBERG_REST_PORT", 8181),
        flink_rest_port=_port("FYP_FLINK_REST_PORT", 8081),
        flink_rpc_port=_port("FYP_FLINK_RPC_PORT", 6123),
        flink_blob_port=_port("FYP_FLINK_BLOB_PORT", 6124),
        flink_metrics_port=_port("FYP_FLINK_METRICS_PORT", 9249),
        seaweed_master_port=_port("FYP_SEAWEED_MASTER_PORT", 9333),
        seaweed_volume_port=_port("FYP_SEAWEED_VOLUME_PORT", 8334),
        seaweed_filer_port=_port("FYP_SEAWEED_FILER_PORT", 8888),
        kafka_user=os.environ.get("FYP_KAFKA_USER", "fyp"),
        kafka_password=found["FYP_KAFKA_PASSWORD"],
        redis_password=found["FYP_REDIS_PASSWORD"],
        s3_access_key=found["FYP_S3_ACCESS_KEY"],
        s3_secret_key=found["FYP_S3_SECRET_KEY"],
        s3_region=os.environ.get("FYP_S3_REGION", "us-east-1"),
        warehouse_bucket=os.environ.get("FYP_WAREHOUSE_BUCKET", "warehouse"),
        media_bucket=os.environ.get("FYP_MEDIA_BUCKET", "media"),
        profile=profile,
        redis_cluster_nodes=_addresses("FYP_REDIS_CLUSTER_NODES", tuple(
            (redis_host, redis_port + i) for i in range(CLUSTER_REDIS_NODES)) if cluster else ()),
        kafka_brokers=_addresses("FYP_KAFKA_BROKERS", tuple(
            (kafka_host, kafka_port + KAFKA_BROKER_PORT_STEP * i) for i in range(brokers))),
        kafka_sasl_mechanism=_choice("FYP_KAFKA_SASL_MECHANISM", "PLAIN", KAFKA_SASL_MECHANISMS),
        kafka_replication_factor=_count("FYP_KAFKA_REPLICATION_FACTOR", 3 if cluster else 1),
        kafka_min_insync_replicas=_count("FYP_KAFKA_MIN_INSYNC_REPLICAS", 2 if cluster else 1),
        taskmanagers=_count("FYP_TASKMANAGERS", 2 if cluster else 1),
        flink_state_bucket=os.environ.get("FYP_FLINK_STATE_BUCKET", "flink-state"),
        served_log_sample_rate=_fraction("FYP_SERVED_LOG_SAMPLE_RATE", 0.01),
    )
