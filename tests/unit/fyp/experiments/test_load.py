"""Experiment declarations from JSON (`fyp serve feed --experiments FILE`): a good file gives the same `Experiment`
values as code would, and a bad one is refused with a message that names what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fyp.experiments.load import MAX_FILE_BYTES, load_experiments, parse_experiments
from fyp.experiments.spec import Arm, Experiment

GOOD = {"experiments": [{"name": "ranker_weights_it", "layer": "ranking", "traffic_percent": 100, "start_ms": 0,
                         "arms": [{"name": "control"},
                                  {"name": "skips_first", "weight": 2,
                                   "overrides": {"ranker.weights.skipped": 5.0}}]}]}


def test_a_file_declares_what_code_would(tmp_path: Path) -> None:
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps(GOOD))
    assert load_experiments(path) == (Experiment(
        name="ranker_weights_it", layer="ranking", traffic_percent=100.0, start_ms=0,
        arms=(Arm(name="control"), Arm(name="skips_first", weight=2, overrides={"ranker.weights.skipped": 5.0}))),)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(extra=1), "unknown keys"),
    (lambda d: d["experiments"][0].update(name="Bad Name"), "experiment name"),
    (lambda d: d["experiments"][0].update(start_ms="0"), "start_ms: expected an integer"),
    (lambda d: d["experiments"][0].update(traffic_percent=True), "traffic_percent must be a number"),
    (lambda d: d["experiments"][0]["arms"].pop(), "arms; use 2"),
    (lambda d: d["experiments"][0]["arms"][1].update(weight=0), "weight must be > 0"),
    (lambda d: d["experiments"][0]["arms"][1].update(colour="red"), "unknown keys"),
    (lambda d: d["experiments"].append(dict(d["experiments"][0])), "names repeat"),
])
def test_a_bad_declaration_is_refused(mutate, message: str) -> None:
    data = json.loads(json.dumps(GOOD))
    mutate(data)
    with pytest.raises(ValueError, match=message):
        parse_experiments(json.dumps(data))


def test_not_json_missing_and_oversized_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_experiments("{")
    with pytest.raises(ValueError, match="cannot read"):
        load_experiments(tmp_path / "missing.json")
    big = tmp_path / "big.json"
    big.write_text(" " * (MAX_FILE_BYTES + 1))
    with pytest.raises(ValueError, match="over"):
        load_experiments(big)
