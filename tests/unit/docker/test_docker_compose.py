"""docker-compose.yml: valid for `docker compose`, loopback-only ports, required secrets, monitoring config.

The `docker compose config` checks need only the docker client with its compose plugin (no engine):
scripts/install.sh builds the plugin from its Go module into build/docker-config/cli-plugins
(docker/install-compose.sh), and these tests use it through DOCKER_CONFIG; without it (or a plugin of the
developer's own) they skip. They run on docker-compose.yml alone and with docker-compose.cluster.yml. The
structural checks parse the files with PyYAML and always run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fyp.config import CLUSTER_KAFKA_BROKERS, CLUSTER_REDIS_NODES, KAFKA_BROKER_PORT_STEP

REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "docker-compose.yml"
CLUSTER_FILE = REPO / "docker-compose.cluster.yml"
VARIANTS = {"single": (COMPOSE_FILE,), "cluster": (COMPOSE_FILE, CLUSTER_FILE)}
PLUGIN_CONFIG = REPO / "build" / "docker-config"  # DOCKER_CONFIG with cli-plugins/docker-compose
ENV_EXAMPLE = REPO / ".env.example"
DOCKER_DIR = REPO / "docker"

REQUIRED_SERVICES = {
    "kafka",
    "redis",
    "seaweedfs",
    "jobmanager",
    "taskmanager",
    "job-submitter",
    "transcoder",
    "moderation",
    "lake-maintenance",
    "index",
    "upload-api",
    "prometheus",
    "grafana",
}
STATEFUL_SERVICES = {"kafka", "redis", "seaweedfs", "jobmanager", "taskmanager", "prometheus", "grafana"}
SECRETS = (
    "FYP_KAFKA_PASSWORD",
    "FYP_REDIS_PASSWORD",
    "FYP_S3_ACCESS_KEY",
    "FYP_S3_SECRET_KEY",
    "FYP_GRAFANA_ADMIN_PASSWORD",
)
DUMMY_SECRETS = {name: f"dummy-{name.lower().replace('_', '-')}" for name in SECRETS}
_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")  # $${...} is a shell variable, escaped for compose
_SECRET_KEY = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|_AUTH$")
_JAAS_PASSWORD = re.compile(r'(?:password|user_[^=\s]+)="([^"]*)"')


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# ------------------------------------------------------------------------------------------------------
# `docker compose config`


def _docker_compose(*args: str, env: dict[str, str], tmp_path: Path,
                    files: tuple[Path, ...] = (COMPOSE_FILE,)) -> subprocess.CompletedProcess[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the `docker` client binary is not on PATH, so `docker compose config` cannot run")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FYP_", "COMPOSE_"))}
    if (PLUGIN_CONFIG / "cli-plugins" / "docker-compose").exists():
        base["DOCKER_CONFIG"] = str(PLUGIN_CONFIG)
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60, env=base)
    if probe.returncode != 0:
        pytest.skip(
            "`docker` is present but has no compose plugin (`docker compose version` failed: "
            f"{(probe.stderr or probe.stdout).strip()[:200]}); `make install` builds one (docker/install-compose.sh)"
        )
    empty_env_file = tmp_path / "empty.env"  # keeps a developer's own .env out of the result
    empty_env_file.write_text("")
    return subprocess.run(
        [docker, "compose", "--env-file", str(empty_env_file), *(a for f in files for a in ("-f", str(f))), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**base, **env},
    )


def _normalised(tmp_path: Path, variant: str) -> dict:
    result = _docker_compose("config", "--format", "json", env=DUMMY_SECRETS, tmp_path=tmp_path,
                             files=VARIANTS[variant])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_compose_config_is_valid(tmp_path: Path, variant: str) -> None:
    result = _docker_compose("config", "--quiet", env=DUMMY_SECRETS, tmp_path=tmp_path, files=VARIANTS[variant])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_compose_refuses_to_start_without_secrets(tmp_path: Path, variant: str) -> None:
    for missing in SECRETS:
        env = {k: v for k, v in DUMMY_SECRETS.items() if k != missing}
        result = _docker_compose("config", "--quiet", env=env, tmp_path=tmp_path, files=VARIANTS[variant])
        assert result.returncode != 0, f"compose accepted a missing {missing}"
        assert missing in result.stderr and "set it in .env" in result.stderr, result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_compose_normalised_ports_are_loopback(tmp_path: Path, variant: str) -> None:
    services = _normalised(tmp_path, variant)
    published = [(name, port) for name, svc in services.items() for port in svc.get("ports") or []]
    assert published, "no published ports at all"
    for name, port in published:
        assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"
    # The secrets reach the containers that need them, interpolated from the environment.
    assert services["redis"]["environment"]["REDISCLI_AUTH"] == DUMMY_SECRETS["FYP_REDIS_PASSWORD"]
    if variant == "single":
        assert DUMMY_SECRETS["FYP_REDIS_PASSWORD"] in services["redis"]["command"]


def test_cluster_variant_matches_the_cluster_profile(tmp_path: Path) -> None:
    services = _normalised(tmp_path, "cluster")
    brokers = [name for name in services if name == "kafka" or name.startswith("kafka-")]
    redis_nodes = [name for name in services if name == "redis" or re.fullmatch(r"redis-\d", name)]
    assert len(brokers) == CLUSTER_KAFKA_BROKERS and len(redis_nodes) == CLUSTER_REDIS_NODES
    assert services["taskmanager"]["deploy"]["replicas"] == 2
    # Host ports as fyp/config.py lays out a cluster: broker i at 9092 + 10*i, Redis node i at 6379 + i.
    kafka_ports = sorted(int(p["published"]) for b in brokers for p in services[b]["ports"])
    assert kafka_ports == [9092 + KAFKA_BROKER_PORT_STEP * i for i in range(CLUSTER_KAFKA_BROKERS)]
    redis_ports = sorted(int(p["published"]) for r in redis_nodes for p in services[r]["ports"])
    assert redis_ports == [6379 + i for i in range(CLUSTER_REDIS_NODES)]
    # One KRaft quorum: distinct node ids, every broker names the same three voters.
    node_ids = {services[b]["environment"]["KAFKA_NODE_ID"] for b in brokers}
    voters = {services[b]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for b in brokers}
    assert node_ids == {"1", "2", "3"} and len(voters) == 1
    for broker in brokers:
        advertised = services[broker]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        assert f"CLIENT://{broker}:9092" in advertised, advertised
    for name in ("jobmanager", "taskmanager", "job-submitter", "transcoder", "moderation", "lake-maintenance", "index",
                 "upload-api"):
        env = services[name]["environment"]
        assert env["FYP_PROFILE"] == "cluster", name
        assert env["FYP_KAFKA_BROKERS"].split(",") == [f"{b}:9092" for b in brokers], name
        assert env["FYP_REDIS_CLUSTER_NODES"].split(",") == [f"{r}:6379" for r in redis_nodes], name
    for node in redis_nodes:
        assert "--cluster-enabled yes" in " ".join(services[node]["command"]), node


# ------------------------------------------------------------------------------------------------------
# Structure (PyYAML)


def test_required_services_exist(compose: dict) -> None:
    missing = REQUIRED_SERVICES - set(_services(compose))
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_every_published_port_binds_loopback(compose: dict) -> None:
    seen = 0
    for name, svc in _services(compose).items():
        assert svc.get("network_mode") != "host", f"{name} uses the host network"
        for port in svc.get("ports") or []:
            seen += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                parts = str(port).split(":")
                assert len(parts) == 3 and parts[0] == "127.0.0.1", (
                    f"{name}: port {port!r} must be written 127.0.0.1:HOST:CONTAINER"
                )
    assert seen >= 9


def test_stateful_services_have_healthchecks(compose: dict) -> None:
    services = _services(compose)
    for name in STATEFUL_SERVICES:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_job_submitter_waits_for_a_healthy_jobmanager(compose: dict) -> None:
    submitter = _services(compose)["job-submitter"]
    assert submitter["depends_on"]["jobmanager"]["condition"] == "service_healthy"
    assert submitter.get("restart") == "no"


def test_flink_processes_use_the_project_conf_and_lib(compose: dict) -> None:
    services = _services(compose)
    for name in ("jobmanager", "taskmanager"):
        env = _environment(services[name])
        assert env["FLINK_CONF_DIR"] and env["FLINK_LIB_DIR"], name
        assert any(str(v).startswith("./flink-conf:") for v in services[name]["volumes"]), name
        assert services[name]["build"]["dockerfile"] == "docker/fyp.Dockerfile"
    assert "9249" in (DOCKER_DIR / "prometheus.yml").read_text()


def test_secrets_are_never_hard_coded(compose: dict) -> None:
    for name, svc in _services(compose).items():
        for key, value in _environment(svc).items():
            if "JAAS" in key:
                passwords = _JAAS_PASSWORD.findall(value)
                assert passwords, f"{name}.{key} has no password"
                for password in passwords:
                    assert password.startswith("${FYP_KAFKA_PASSWORD:?"), f"{name}.{key}: {password}"
            elif _SECRET_KEY.search(key):
                assert value.startswith("${") and ":?" in value, f"{name}.{key} is not a required ${{VAR}}"
    redis_cmd = _services(compose)["redis"]["command"]
    password = redis_cmd[redis_cmd.index("--requirepass") + 1]
    assert password.startswith("${FYP_REDIS_PASSWORD:?"), password
    seaweed_env = _environment(_services(compose)["seaweedfs"])
    assert seaweed_env["AWS_SECRET_ACCESS_KEY"].startswith("${FYP_S3_SECRET_KEY:?")


def test_named_volumes_are_declared(compose: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name, svc in _services(compose).items():
        for volume in svc.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source!r}"
    assert {"kafka-data", "redis-data", "seaweedfs-data"} <= declared


def test_env_example_lists_every_variable_without_secrets() -> None:
    referenced = set(_VAR.findall(COMPOSE_FILE.read_text() + CLUSTER_FILE.read_text()))
    listed = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.lstrip().startswith("#"):
            listed[name.strip()] = value.strip()
    assert referenced - set(listed) == set(), f".env.example lacks {sorted(referenced - set(listed))}"
    for name in SECRETS:
        assert listed[name] == "", f".env.example must not carry a value for {name}"


def test_prometheus_scrapes_flink_and_workers() -> None:
    config = yaml.safe_load((DOCKER_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["flink-jobmanager"]["static_configs"][0]["targets"] == ["jobmanager:9249"]
    assert jobs["flink-taskmanager"]["dns_sd_configs"][0]["port"] == 9249
    assert {"fyp-workers", "fyp-services"} <= set(jobs)


def test_grafana_provisioning_and_dashboard() -> None:
    grafana = DOCKER_DIR / "grafana"
    datasources = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    uid = datasources["datasources"][0]["uid"]
    providers = yaml.safe_load((grafana / "provisioning/dashboards/dashboards.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    dashboard = json.loads((grafana / "dashboards/fyp.json").read_text())
    exprs = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", []))
    for metric in (
        "numRecordsInPerSecond",
        "numRecordsOutPerSecond",
        "lastCheckpointDuration",
        "numRestarts",
        "KafkaConsumer_records_lag_max",
        "fyp_dead_letters_total",
        "fyp_late_events_total",
    ):
        assert metric in exprs, f"dashboard has no panel on {metric}"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
