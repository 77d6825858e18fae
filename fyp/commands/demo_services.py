"""The demo's long-running services: reuse one that answers on its URL, else run `fyp serve ...` for the demo.

One launcher for the index and feed services (demo_index, demo_feed), so both start, wait and stop the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from fyp.config import REPO_ROOT, Settings

__all__ = ["healthy", "served", "wait_for"]


def healthy(url: str) -> bool:
    """Whether a service answers 200 on `url`/healthz."""
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, *, interval_s: float = 0.05,
             proc: subprocess.Popen | None = None) -> float:
    """Seconds until `check()` is truthy; RuntimeError when `proc` exits first or `timeout_s` passes."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        if check():
            return time.monotonic() - started
        time.sleep(interval_s)
    raise RuntimeError(f"{what}: not within {timeout_s:.0f} s")


@contextmanager
def served(settings: Settings, url: str, serve_args: Sequence[str], *, log_name: str,
           timeout_s: float = 120) -> Iterator[str]:
    """`url` while a service answers there: an existing one, or `fyp serve <serve_args>` started (and stopped
    afterwards) for the demo, its output in the stack's logs directory as `log_name`."""
    if healthy(url):
        yield url
        return
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    with (settings.logs_dir / log_name).open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "fyp.cli", "serve", *serve_args],
                                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            wait_for(lambda: healthy(url), timeout_s, f"{serve_args[0]} service at {url} (log {log.name})", proc=proc)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
