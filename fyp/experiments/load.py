"""Experiment declarations from a JSON file, for `fyp serve feed --experiments FILE` (a test's or a trial's
experiments, in place of fyp/experiments/declared.py's). Every value is checked as `Experiment` checks a declaration
in code, and the layers as `check_layers` does; a bad file is refused with a message naming the experiment.

The file:

    {"experiments": [
      {"name": "ranker_weights_it", "layer": "ranking", "traffic_percent": 100, "start_ms": 0,
       "arms": [{"name": "control"},
                {"name": "skips_first", "overrides": {"ranker.weights.skipped": 5.0}}]}
    ]}

Optional per experiment: `end_ms`, `salt`; per arm: `weight` (default 1), `overrides` (default none).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fyp.experiments.spec import MAX_ARMS, Arm, Experiment, check_layers

__all__ = ["MAX_EXPERIMENTS", "MAX_FILE_BYTES", "load_experiments", "parse_experiments"]

MAX_FILE_BYTES = 1_048_576
MAX_EXPERIMENTS = 256
_EXPERIMENT_KEYS = {"name", "layer", "arms", "traffic_percent", "start_ms", "end_ms", "salt"}
_ARM_KEYS = {"name", "weight", "overrides"}


def _check_keys(what: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what}: expected an object, got {type(value).__name__}")
    unknown = set(value) - allowed
    if unknown:
        raise ValueError(f"{what}: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")
    return value


def _int(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what}: expected an integer, got {value!r}")
    return value


def _arm(where: str, raw: Any) -> Arm:
    raw = _check_keys(where, raw, _ARM_KEYS)
    overrides = raw.get("overrides", {})
    if not isinstance(overrides, dict) or not all(isinstance(k, str) for k in overrides):
        raise ValueError(f"{where}: overrides must be an object of dotted keys")
    return Arm(name=str(raw.get("name", "")), weight=_int(f"{where}.weight", raw.get("weight", 1)),
               overrides=overrides)


def _experiment(i: int, raw: Any) -> Experiment:
    raw = _check_keys(f"experiments[{i}]", raw, _EXPERIMENT_KEYS)
    where = f"experiment {raw.get('name', i)!r}"
    arms = raw.get("arms")
    if not isinstance(arms, list) or len(arms) > MAX_ARMS:
        raise ValueError(f"{where}: arms must be a list of at most {MAX_ARMS}")
    percent = raw.get("traffic_percent")
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise ValueError(f"{where}: traffic_percent must be a number, got {percent!r}")
    end_ms = raw.get("end_ms")
    return Experiment(name=str(raw.get("name", "")), layer=str(raw.get("layer", "")),
                      arms=tuple(_arm(f"{where} arms[{j}]", a) for j, a in enumerate(arms)),
                      traffic_percent=float(percent), start_ms=_int(f"{where}.start_ms", raw.get("start_ms")),
                      end_ms=None if end_ms is None else _int(f"{where}.end_ms", end_ms),
                      salt=str(raw.get("salt", "")))


def parse_experiments(text: str) -> tuple[Experiment, ...]:
    """The declarations in `text` (the JSON above), validated; `ValueError` says what is wrong."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise ValueError(f"experiments file over {MAX_FILE_BYTES} bytes")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"experiments file is not JSON: {exc}") from exc
    raw = _check_keys("experiments file", raw, {"experiments"})
    items = raw.get("experiments")
    if not isinstance(items, list) or len(items) > MAX_EXPERIMENTS:
        raise ValueError(f"'experiments' must be a list of at most {MAX_EXPERIMENTS}")
    experiments = tuple(_experiment(i, e) for i, e in enumerate(items))
    check_layers(experiments)
    return experiments


def load_experiments(path: Path) -> tuple[Experiment, ...]:
    """The declarations in the JSON file at `path`; `ValueError` when it is missing, too large or invalid."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValueError(f"cannot read experiments file {path}: {exc.strerror}") from exc
    if size > MAX_FILE_BYTES:
        raise ValueError(f"experiments file {path} is {size} bytes, over {MAX_FILE_BYTES}")
    return parse_experiments(path.read_text(encoding="utf-8"))
