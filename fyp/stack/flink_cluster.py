"""A Flink standalone cluster (JobManager + TaskManager) from the apache-flink wheel in .venv-flink."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from string import Template

import httpx
import yaml

from fyp.config import REPO_ROOT, Settings
from fyp.stack.process import StackError
from fyp.stack.service import ProcessService

__all__ = ["FlinkDistribution", "JobManagerService", "TaskManagerService"]

CONNECTOR_JARS = REPO_ROOT / "build" / "jars" / "flink"


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

    def bin(self, script: str) -> Path:
        return self.home / "bin" / script

    def render(self) -> None:
        """Write FLINK_CONF_DIR (our config.yaml + the wheel's log4j files) and FLINK_LIB_DIR (dist + connectors)."""
        s = self.settings
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for source in (self.home / "conf").glob("log*"):
            shutil.copy2(source, self.conf_dir / source.name)
        text = (REPO_ROOT / "flink-conf" / "config.yaml").read_text()
        if self.prometheus_enabled:
            text += (REPO_ROOT / "flink-conf" / "prometheus.yaml").read_text()
        (self.conf_dir / "config.yaml").write_text(Template(text).substitute(
            HOST=s.host, FYP_HOME=s.home, FLINK_RPC_PORT=s.flink_rpc_port, FLINK_BLOB_PORT=s.flink_blob_port,
            FLINK_PYTHON=self.python, FLINK_REST_PORT=s.flink_rest_port,
            FLINK_METRICS_PORT=s.flink_metrics_port, FLINK_METRICS_PORT_END=s.flink_metrics_port + 1,
            DIST_JAVA_OPTS=self._dist_java_opts(),
        ))
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

    def _dist_java_opts(self) -> str:
        dist_conf = yaml.safe_load((self.home / "conf" / "config.yaml").read_text())
        return dist_conf["env"]["java"]["opts"]["all"]

    def environment(self) -> dict[str, str]:
        return {
            "FLINK_CONF_DIR": str(self.conf_dir),
            "FLINK_LIB_DIR": str(self.lib_dir),
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
        return self.dist.environment()

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

    def check(self) -> str:
        overview = self._rest("/overview")
        return f"Flink {overview['flink-version']}, {overview['jobs-running']} jobs running"


class TaskManagerService(_FlinkProcess):
    name = "flink-taskmanager"
    script = "taskmanager.sh"

    def environment(self) -> Mapping[str, str]:
        # Thread mode embeds CPython in the JVM (PEMJA), which starts without the virtualenv's site-packages
        # and does not run its .pth files: name both the site-packages and the project explicitly.
        site_packages = self.dist.home.parent
        return {**self.dist.environment(), "PYTHONPATH": f"{site_packages}:{REPO_ROOT}",
                "FYP_REDIS_PASSWORD": self.settings.redis_password}

    def address(self) -> str:
        if self.dist.prometheus_enabled:
            return f"{self.settings.host} (Prometheus :{self.settings.flink_metrics_port + 1})"
        return self.settings.host

    def ports(self) -> Sequence[int]:
        return []

    def check(self) -> str:
        overview = self._rest("/overview")
        if overview["taskmanagers"] < 1:
            raise StackError("no TaskManager registered yet")
        free, total = overview["slots-available"], overview["slots-total"]
        return f"{overview['taskmanagers']} TaskManager, {free}/{total} slots free"
