"""Run the Pathway peer (fyp.bench.peers.pathway_flow) in its own environment, `.venv-pathway`, as a child process.

Pathway 0.33.0 caps pyarrow below 26 and pins opentelemetry 1.45.2, which would downgrade the tools environment,
so it is installed apart (pyproject extra `peers-pathway`, scripts/install.sh). The child times itself, from the
start of its Pathway run (connecting to Kafka included: Python sees no record before the whole topic was read) to
its last Redis write, and prints its PeerRun as JSON; starting the interpreter and importing Pathway are outside
that span. Settings go to the child on stdin, so no password is on a command line.

>>> settings_from_json(settings_to_json(load_settings())) == load_settings()  # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, fields
from pathlib import Path

from fyp.bench.peers.result import PeerRun
from fyp.config import REPO_ROOT, Settings

__all__ = ["PATHWAY_PYTHON", "run_pathway_process", "settings_from_json", "settings_to_json"]

PATHWAY_PYTHON = REPO_ROOT / ".venv-pathway" / "bin" / "python"


def settings_to_json(settings: Settings) -> str:
    return json.dumps({**asdict(settings), "home": str(settings.home)})


def settings_from_json(text: str) -> Settings:
    """The inverse of `settings_to_json`: paths and tuples of pairs come back as they were."""
    data = json.loads(text)
    known = {f.name for f in fields(Settings)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown Settings fields {sorted(unknown)}")
    data["home"] = Path(data["home"])
    for name in ("redis_cluster_nodes", "kafka_brokers"):
        if name in data:
            data[name] = tuple((host, int(port)) for host, port in data[name])
    return Settings(**data)


def run_pathway_process(
    settings: Settings, *, events: int, group_id: str, timeout_s: float, topic: str,
    python: Path = PATHWAY_PYTHON,
) -> PeerRun:
    """Run the flow in `python` (the Pathway environment's interpreter); raises FileNotFoundError without it,
    TimeoutError after `timeout_s` seconds, RuntimeError if the child fails."""
    if not python.exists():
        raise FileNotFoundError(f"{python} is missing: scripts/install.sh creates the Pathway environment")
    command = [str(python), "-m", "fyp.bench.peers.pathway_flow", "--events", str(events), "--group-id", group_id,
               "--topic", topic, "--settings-stdin", "--json"]
    try:
        done = subprocess.run(command, input=settings_to_json(settings), capture_output=True, text=True,
                              timeout=timeout_s, cwd=REPO_ROOT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"pathway peer: not done after {timeout_s} s") from exc
    if done.returncode != 0:
        raise RuntimeError(f"pathway peer exited with {done.returncode}: {done.stderr.strip()[-2000:]}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"pathway peer printed no result; stderr: {done.stderr.strip()[-2000:]}")
    return PeerRun(**json.loads(lines[-1]))
