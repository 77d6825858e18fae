"""Commands run with a service down say which one, at which address, in one line (fyp/commands/unreachable.py).

The errors come from the real client libraries connecting to a port nothing listens on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry

from fyp.commands.unreachable import is_unreachable, unreachable_message
from fyp.config import REPO_ROOT, load_settings
from fyp.stack.process import StackError
from fyp.stack.submit import submit_job


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"FYP_HOME": str(tmp_path / "home"), "FYP_PORT_OFFSET": "0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_settings.cache_clear()
    yield env
    load_settings.cache_clear()


def _redis_get(port: int) -> None:
    redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0)).get("k")


def _unreachable(service: str, port: int) -> str:
    return (f"{service} at 127.0.0.1:{port} is not reachable; is the local stack up? "
            "`fyp status` shows each service, `fyp up` starts them")


def _raised(call) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


def test_each_client_names_the_address(closed_port: int, settings_env: dict[str, str]) -> None:
    errors = [
        _raised(lambda: _redis_get(closed_port)),
        _raised(lambda: httpx.get(f"http://127.0.0.1:{closed_port}/jobs")),
        _raised(lambda: requests.get(f"http://127.0.0.1:{closed_port}/v1/config", timeout=5)),
    ]
    for error in errors:
        assert is_unreachable(error), type(error)
        assert unreachable_message(error) == _unreachable("the service", closed_port)


def test_known_ports_are_named(closed_port: int, settings_env: dict[str, str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FYP_REDIS_PORT", str(closed_port))
    load_settings.cache_clear()
    message = unreachable_message(_raised(lambda: _redis_get(closed_port)))
    assert message == _unreachable("Redis", closed_port)


def test_other_errors_are_left_alone() -> None:
    assert unreachable_message(ValueError("bad id")) is None
    assert unreachable_message(redis.ResponseError("WRONGTYPE")) is None


@pytest.mark.parametrize("command", [["features", "user", "u1"], ["video", "v0", "--json"]])
def test_cli_prints_one_line_not_a_traceback(command: list[str], closed_port: int,
                                             settings_env: dict[str, str]) -> None:
    env = {**os.environ, **settings_env, "FYP_REDIS_PORT": str(closed_port), "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "fyp.cli", *command], capture_output=True, text=True, env=env,
                            cwd=REPO_ROOT, timeout=120, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {_unreachable('Redis', closed_port)}"


def test_submit_fails_at_once_without_a_jobmanager(closed_port: int, settings_env: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # `flink run` against a JobManager that is down would build the job and then retry for minutes.
    monkeypatch.setenv("FYP_FLINK_REST_PORT", str(closed_port))
    load_settings.cache_clear()
    with pytest.raises(StackError, match=f"JobManager at http://127.0.0.1:{closed_port} is not reachable"):
        submit_job(load_settings(), "engagement_features", timeout_s=5)
