"""Start, find and stop the stack's background processes, each with a pid file and a log file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "StackError",
    "log_tail",
    "pid_alive",
    "port_in_use",
    "read_pid",
    "reap",
    "spawn",
    "stop_pid",
    "wait_until",
]


class StackError(RuntimeError):
    """A service could not start or stop; the message says which log to read."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


# The Popen of every service this process started, by pid. A child that exits stays a zombie until its parent
# collects its exit status; `fyp up` exits right after starting the services (init adopts and reaps them), but
# a long-lived process that starts services itself (`fyp bench chaos` restarting the TaskManager and the
# broker, the integration tests' session stack) is their parent, and must wait for the ones it stops or kills.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    argv: Sequence[str], *, pid_file: Path, log_file: Path, env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start `argv` detached from this terminal (its own session), logging to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    _children[proc.pid] = proc
    return proc.pid


def reap(pid: int, *, timeout_s: float = 10.0) -> bool:
    """Wait until `pid` has exited and, if it is a child of this process, collect its exit status (no zombie).

    True once it is gone; False if it still runs after `timeout_s`. A process that is not our child was started
    by an earlier fyp command that has exited since: init adopted it and reaps it, so it is only waited for.
    """
    proc = _children.get(pid)
    if proc is not None:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        del _children[pid]
        return True
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return True  # a child started some other way, now reaped
        except ChildProcessError:
            if not pid_alive(pid):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop_pid(pid: int, *, timeout_s: float = 20.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `timeout_s`; reap it if it is ours."""
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            reap(pid, timeout_s=0)  # already gone; forget its Popen if we started it
            return
        except PermissionError:
            os.kill(pid, sig)
        if reap(pid, timeout_s=wait_s):
            return


def wait_until(check: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.25) -> bool:
    """Poll `check` until it is true or `timeout_s` passes; exceptions count as not yet."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:
            pass
        time.sleep(interval_s)
    return False


def log_tail(log_file: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log yet)"
