"""What every local service offers the `fyp up/down/status` commands."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fyp.config import Settings
from fyp.stack.process import (
    StackError,
    log_tail,
    pid_alive,
    port_in_use,
    read_pid,
    spawn,
    stop_pid,
    wait_until,
)

__all__ = ["Health", "ProcessService"]


@dataclass(frozen=True, kw_only=True)
class Health:
    """One service's state as `fyp status` reports it."""

    name: str
    address: str
    running: bool
    healthy: bool
    pid: int | None
    detail: str
    log: str


class ProcessService(ABC):
    """A service that fyp runs as one foreground process it tracks by pid file.

    Subclasses say how to prepare the service's files, which command runs it and how to tell it is healthy.
    `start` and `stop` are idempotent.
    """

    name: str
    start_timeout_s: float = 60.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # What a subclass provides.
    @abstractmethod
    def address(self) -> str: ...

    @abstractmethod
    def ports(self) -> Sequence[int]: ...

    @abstractmethod
    def command(self) -> Sequence[str]: ...

    @abstractmethod
    def check(self) -> str:
        """Return a short detail string when healthy; raise when not (yet)."""

    def prepare(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Write config files and initialise storage before the first start."""

    def environment(self) -> Mapping[str, str]:
        return {}

    def after_start(self) -> None:  # noqa: B027 - optional hook, empty by default
        """One-off set-up that needs the running service (topics, buckets)."""

    # Shared behaviour.
    @property
    def home(self) -> Path:
        return self.settings.data_dir / self.name

    @property
    def pid_file(self) -> Path:
        return self.settings.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.settings.logs_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid_alive(pid) else None

    def start(self) -> None:
        if self.pid() is not None:
            return
        taken = [p for p in self.ports() if port_in_use(self.settings.host, p)]
        if taken:
            raise StackError(
                f"{self.name}: port {', '.join(map(str, taken))} on {self.settings.host} is already taken by "
                "another process. Stop it, or choose other ports with the FYP_*_PORT variables (README)."
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare()
        spawn(self.command(), pid_file=self.pid_file, log_file=self.log_file, env=self.environment(),
              cwd=self.home)
        if not wait_until(self._healthy_or_dead, timeout_s=self.start_timeout_s) or self.pid() is None:
            died = self.pid() is None
            self.stop()
            raise StackError(
                f"{self.name} {'exited' if died else 'did not become healthy'} within "
                f"{self.start_timeout_s:.0f} s. Read {self.log_file}; its last lines:\n{log_tail(self.log_file)}"
            )
        self.after_start()

    def _healthy_or_dead(self) -> bool:
        """True once healthy, and also once the process died, so a failed start is reported at once."""
        if self.pid() is None:
            return True
        self.check()
        return True

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            stop_pid(pid)
            # The kernel releases listening sockets a moment after the process dies; a quick restart
            # would otherwise see its own ports as taken.
            wait_until(lambda: not any(port_in_use(self.settings.host, p) for p in self.ports()), timeout_s=10)
        self.pid_file.unlink(missing_ok=True)

    def health(self) -> Health:
        pid = self.pid()
        detail, healthy = "not running", False
        if pid is not None:
            try:
                detail, healthy = self.check(), True
            except Exception as exc:
                detail = f"unhealthy: {exc}".splitlines()[0][:200]
        return Health(name=self.name, address=self.address(), running=pid is not None, healthy=healthy,
                      pid=pid, detail=detail, log=str(self.log_file))


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    if candidate and candidate.exists():
        return str(candidate)
    from shutil import which

    found = which("java")
    if not found:
        raise StackError("Java 17+ is needed for Kafka and Flink: apt-get install openjdk-17-jre-headless")
    return found
