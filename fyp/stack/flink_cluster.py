"""A Flink standalone cluster (a JobManager and `settings.taskmanagers` TaskManagers) from the apache-flink wheel.

The single profile renders flink-conf/config.yaml; the cluster profile merges flink-conf/cluster.yaml over it
(TaskManager sizes, checkpoints and savepoints on s3:// through the s3-fs-hadoop plugin).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from string import Template

import httpx
import yaml

from fyp.config import REPO_ROOT, Settings
from fyp.stack.process import StackError
from fyp.stack.service import ProcessService

__all__ = ["FlinkDistribution", "JobManagerService", "TaskManagerService", "merge_config", "taskmanager_services"]

CONNECTOR_JARS = REPO_ROOT / "build" / "jars" / "flink"
PLUGIN_JARS = REPO_ROOT / "build" / "jars" / "flink-plugins"  # connectors/maven/flink-plugins/pom.xml
S3_PLUGIN = "s3-fs-hadoop"


def merge_config(base: dict, overlay: dict) -> dict:
    """`overlay` over `base`, nested mappings merged key by key (a profile changes leaves, not whole sections).

    >>> merge_config({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}, "d": 4})
    {'a': {'b': 1, 'c': 3}, 'd': 4}
    """
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = value
    return merged


class FlinkDistribution:
    """Where the Flink distribution, its rendered config and its lib folder live for one installation."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.venv = Path(os.environ.get("FYP_FLINK_VENV", REPO_ROOT / ".venv-flink"))

    @property
    def prometheus_enabled(self) -> bool:
        return os.environ.get("FYP_FLINK_PROMETHEUS", "0").lower() in {"1", "true", "yes", "on"}

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @cached_property
    def home(self) -> Path:
        found = sorted((self.venv / "lib").glob("python3*/site-packages/pyflink"))
        if not found:
            raise StackError(f"no PyFlink in {self.venv}: run `make install` (scripts/install.sh)")
        return found[0]

    @property
    def conf_dir(self) -> Path:
        return self.settings.home / "flink-conf"

    @property
    def lib_dir(self) -> Path:
        return self.settings.home / "flink-lib"

    @property
    def plugins_dir(self) -> Path:
        return self.settings.home / "flink-plugins"

    def bin(self, script: str) -> Path:
        return self.home / "bin" / script

    def render(self) -> None:
        """Write FLINK_CONF_DIR (our config.yaml + the wheel's log4j files) and FLINK_LIB_DIR (dist + connectors)."""
        s = self.settings
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for source in (self.home / "conf").glob("log*"):
            shutil.copy2(source, self.conf_dir / source.name)
        overlays = ["prometheus.yaml"] if self.prometheus_enabled else []
        overlays += ["cluster.yaml"] if s.is_cluster else []
        config: dict = {}
        for name in ["config.yaml", *overlays]:
            text = self._substitute((REPO_ROOT / "flink-conf" / name).read_text())
            config = merge_config(config, yaml.safe_load(text))
        (self.conf_dir / "config.yaml").write_text(
            "# Rendered by `fyp up` from flink-conf/ (" + " + ".join(["config.yaml", *overlays]) + ")\n"
            + yaml.safe_dump(config, sort_keys=False, width=10**6))
        self._render_lib()
        self._render_plugins()

    def _substitute(self, text: str) -> str:
        s = self.settings
        return Template(text).substitute(
            HOST=s.host, FYP_HOME=s.home, FLINK_RPC_PORT=s.flink_rpc_port, FLINK_BLOB_PORT=s.flink_blob_port,
            FLINK_PYTHON=self.python, FLINK_REST_PORT=s.flink_rest_port,
            FLINK_METRICS_PORT=s.flink_metrics_port,
            # One port for the JobManager and one per TaskManager: each takes the first free one of the range.
            FLINK_METRICS_PORT_END=s.flink_metrics_port + s.taskmanagers,
            DIST_JAVA_OPTS=self._dist_java_opts(), FLINK_STATE_BUCKET=s.flink_state_bucket,
            S3_ENDPOINT=s.s3_endpoint, S3_REGION=s.s3_region,
        )

    def _render_lib(self) -> None:
        connector_jars = sorted(CONNECTOR_JARS.glob("*.jar"))
        if not connector_jars:
            raise StackError(f"no connector jars in {CONNECTOR_JARS}: run `make install` (scripts/install.sh)")
        if self.lib_dir.exists():
            shutil.rmtree(self.lib_dir)
        self.lib_dir.mkdir(parents=True)
        # flink-python in lib/ (not shipped per job from opt/) loads PEMJA's native library once per JVM:
        # from a per-job class loader, a task restart fails on Java 17 (NoSuchFieldException: loadedLibraryNames).
        python_jar = sorted((self.home / "opt").glob("flink-python-*.jar"))
        for jar in [*(self.home / "lib").glob("*.jar"), *python_jar, *connector_jars]:
            (self.lib_dir / jar.name).symlink_to(jar)

    def _render_plugins(self) -> None:
        """FLINK_PLUGINS_DIR: the wheel's plugins (metrics reporters), plus in the cluster profile the S3 file
        system from Maven (the single profile keeps its checkpoints on file://)."""
        if self.plugins_dir.exists():
            shutil.rmtree(self.plugins_dir)
        self.plugins_dir.mkdir(parents=True)
        for plugin in (self.home / "plugins").iterdir():
            if plugin.is_dir():
                (self.plugins_dir / plugin.name).symlink_to(plugin)
        if not self.settings.is_cluster:
            return
        s3_jars = sorted(PLUGIN_JARS.glob("flink-s3-fs-hadoop-*.jar"))
        if not s3_jars:
            raise StackError(f"no flink-s3-fs-hadoop jar in {PLUGIN_JARS} (the cluster profile keeps checkpoints "
                             "on S3): run `make install` (scripts/install.sh)")
        for jar in s3_jars:
            (self.plugins_dir / S3_PLUGIN).mkdir(exist_ok=True)
            (self.plugins_dir / S3_PLUGIN / jar.name).symlink_to(jar)

    def _dist_java_opts(self) -> str:
        dist_conf = yaml.safe_load((self.home / "conf" / "config.yaml").read_text())
        return dist_conf["env"]["java"]["opts"]["all"]

    def environment(self) -> dict[str, str]:
        return {
            "FLINK_CONF_DIR": str(self.conf_dir),
            "FLINK_LIB_DIR": str(self.lib_dir),
            "FLINK_PLUGINS_DIR": str(self.plugins_dir),
            "FLINK_LOG_DIR": str(self.settings.logs_dir),
            "FYP_HOME": str(self.settings.home),
        }


class _FlinkProcess(ProcessService):
    start_timeout_s = 90.0
    script: str

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.dist = FlinkDistribution(settings)

    def environment(self) -> Mapping[str, str]:
        s = self.settings
        if not s.is_cluster:
            return self.dist.environment()
        # The S3 file system (checkpoints, savepoints) reads its keys from the environment (Hadoop S3A's
        # EnvironmentVariableCredentialsProvider), so they stay out of the rendered config.yaml.
        return {**self.dist.environment(), "AWS_ACCESS_KEY_ID": s.s3_access_key,
                "AWS_SECRET_ACCESS_KEY": s.s3_secret_key, "AWS_REGION": s.s3_region}

    def command(self) -> Sequence[str]:
        return ["bash", str(self.dist.bin(self.script)), "start-foreground"]

    def _rest(self, path: str) -> dict:
        response = httpx.get(f"{self.settings.flink_rest_url}{path}", timeout=2)
        response.raise_for_status()
        return response.json()


class JobManagerService(_FlinkProcess):
    name = "flink-jobmanager"
    script = "jobmanager.sh"

    def address(self) -> str:
        return f"{self.settings.flink_rest_url} (Web UI, REST)"

    def ports(self) -> Sequence[int]:
        metrics = [self.settings.flink_metrics_port] if self.dist.prometheus_enabled else []
        s = self.settings
        return [s.flink_rest_port, s.flink_rpc_port, s.flink_blob_port, *metrics]

    def prepare(self) -> None:
        self.dist.render()
        if self.settings.is_cluster:
            _ensure_bucket(self.settings, self.settings.flink_state_bucket)

    def check(self) -> str:
        overview = self._rest("/overview")
        return f"Flink {overview['flink-version']}, {overview['jobs-running']} jobs running"


def _ensure_bucket(settings: Settings, bucket: str) -> None:
    from fyp.stack.seaweedfs import s3_client  # boto3 import is slow; only the cluster profile needs it here

    client = s3_client(settings)
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)


class TaskManagerService(_FlinkProcess):
    """TaskManager `index` (1-based) of `settings.taskmanagers`; named `flink-taskmanager` when it is the only one."""

    name = "flink-taskmanager"
    script = "taskmanager.sh"

    def __init__(self, settings: Settings, index: int = 1) -> None:
        super().__init__(settings)
        if not 1 <= index <= settings.taskmanagers:
            raise ValueError(f"TaskManager {index} is not one of 1..{settings.taskmanagers}")
        self.index = index
        if settings.taskmanagers > 1:
            self.name = f"flink-taskmanager-{index}"

    def command(self) -> Sequence[str]:
        if self.settings.taskmanagers == 1:
            return super().command()
        # A resource id per start: Flink's logs and REST API name it, and `check` finds this process there (a
        # TaskManager killed a moment ago stays registered until its heartbeat times out).
        resource_id = f"{self.settings.host}-{self.name}-{uuid.uuid4().hex[:8]}"
        self.resource_id_file.write_text(resource_id + "\n")
        return [*super().command(), "-D", f"taskmanager.resource-id={resource_id}"]

    @property
    def resource_id_file(self) -> Path:
        return self.home / "resource-id"

    def environment(self) -> Mapping[str, str]:
        # Thread mode embeds CPython in the JVM (PEMJA), which starts without the virtualenv's site-packages
        # and does not run its .pth files: name both the site-packages and the project explicitly.
        site_packages = self.dist.home.parent
        return {**super().environment(), "PYTHONPATH": f"{site_packages}:{REPO_ROOT}",
                "FYP_REDIS_PASSWORD": self.settings.redis_password}

    def address(self) -> str:
        if self.dist.prometheus_enabled:
            # The processes start in order (JobManager, then TaskManager 1, 2, ...), each taking the first free port.
            return f"{self.settings.host} (Prometheus :{self.settings.flink_metrics_port + self.index})"
        return self.settings.host

    def ports(self) -> Sequence[int]:
        return []

    def check(self) -> str:
        if self.settings.taskmanagers == 1:
            overview = self._rest("/overview")
            if overview["taskmanagers"] < 1:
                raise StackError("no TaskManager registered yet")
            free, total = overview["slots-available"], overview["slots-total"]
            return f"{overview['taskmanagers']} TaskManager, {free}/{total} slots free"
        registered = {tm["id"]: tm for tm in self._rest("/taskmanagers")["taskmanagers"]}
        resource_id = self.resource_id_file.read_text().strip()
        mine = registered.get(resource_id)
        if mine is None:
            raise StackError(f"{resource_id} has not registered with the JobManager yet")
        return f"{len(registered)} TaskManager, {mine['freeSlots']}/{mine['slotsNumber']} slots free here"


def taskmanager_services(settings: Settings) -> list[TaskManagerService]:
    """One service per TaskManager of `settings.taskmanagers`, each with its own pid file and log."""
    return [TaskManagerService(settings, index) for index in range(1, settings.taskmanagers + 1)]
