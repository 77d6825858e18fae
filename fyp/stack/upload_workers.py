"""The upload path's processes outside Flink: transcoder and moderator workers and the upload API, as tracked
subprocesses with their own logs. `fyp bench upload`, `fyp demo` and the integration tests start them the same
way through this class."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fyp.config import REPO_ROOT

__all__ = ["UploadWorkers", "WorkerExited", "free_port"]


class WorkerExited(RuntimeError):
    """A started worker or the API process is no longer running."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class UploadWorkers:
    """Subprocesses logging to `logs_dir/{log_prefix}{name}.log`, with `env` added to this process's."""

    def __init__(self, logs_dir: Path, env: dict[str, str] | None = None, *, log_prefix: str = "") -> None:
        self.logs_dir = logs_dir
        self.env = env or {}
        self.log_prefix = log_prefix
        self.procs: dict[str, subprocess.Popen] = {}

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{self.log_prefix}{name}.log"

    def start(self, name: str, argv: list[str]) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(name).open("w")
        self.procs[name] = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"})

    def start_workers(self) -> None:
        """One transcoder and one moderator (more processes of each scale out: they share a consumer group)."""
        self.start("transcoder", [sys.executable, "-m", "workers.transcoder"])
        self.start("moderator", [sys.executable, "-m", "workers.moderator"])

    def start_api(self, *, timeout_s: float = 60, log_level: str = "info") -> str:
        """Start the upload API on a free loopback port and wait until it answers; returns its base URL."""
        port = free_port()
        self.start("upload-api", [sys.executable, "-m", "uvicorn", "--factory",
                                  "fyp.uploads.wiring:build_upload_app", "--host", "127.0.0.1",
                                  "--port", str(port), "--log-level", log_level])
        api = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            try:
                httpx.get(f"{api}/docs", timeout=1)
                return api
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise WorkerExited(f"upload API not answering on {api}:\n{self.tail('upload-api')}") from None
                time.sleep(0.3)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise WorkerExited(f"{name} exited with {proc.returncode} (log {self.log_path(name)}):\n"
                                   f"{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path(name).read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each process and its finished children (ffmpeg, fpcalc), from /proc:
        unlike wall time, this does not grow when other work shares the cores."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for name, proc in self.procs.items():
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used[name] = sum(int(v) for v in fields[11:15]) / ticks  # utime, stime, cutime, cstime
        return used

    def stop(self, timeout_s: float = 60) -> None:
        """SIGTERM (a worker finishes its current item first), then kill whatever outlives `timeout_s`."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
