"""`fyp training-set verify`'s options reach the skew check: the in-flight bound defaults to the job's flush bound and
can be raised, and per-partition bounds are passed on (the check itself runs against a real catalog in
tests/integration/test_zz_served_training.py)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

import connectors.iceberg_tables
import fyp.config
import fyp.stack.submit
import fyp.training.skew
from fyp.commands import training as training_commands
from fyp.training.skew import IN_FLIGHT_BOUND_MS, SkewReport


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    seen: list[dict] = []

    def check(catalog, declared, **options) -> SkewReport:
        seen.append({"training_set": declared.name, **options})
        return SkewReport(rows=0, mismatches=0, unexplained=0, by_cause={}, examples=[])

    monkeypatch.setattr(fyp.training.skew, "check", check)
    monkeypatch.setattr(connectors.iceberg_tables, "catalog", lambda settings: None)
    monkeypatch.setattr(fyp.config, "load_settings", lambda: None)
    monkeypatch.setattr(fyp.stack.submit, "running_parallelism", lambda settings, pipeline: RUNNING_PARALLELISM)
    return seen


RUNNING_PARALLELISM = 3  # what Flink's REST API says of the running features job, in these tests


def _verify(*args: str):
    app = typer.Typer()
    training_commands.register(app)
    return CliRunner().invoke(app, ["training-set", "verify", "watch_outcomes", *args, "--json"])


def test_the_bound_defaults_to_the_jobs_flush_bound_and_can_be_raised(calls: list[dict]) -> None:
    assert _verify().exit_code == 0
    assert _verify("--in-flight-bound-ms", "651756", "--sample", "200").exit_code == 0
    assert [(c["in_flight_bound_ms"], c["sample"]) for c in calls] == [(IN_FLIGHT_BOUND_MS, 1000), (651756, 200)]


def test_a_negative_bound_is_refused_before_anything_runs(calls: list[dict]) -> None:
    result = _verify("--in-flight-bound-ms", "-1")
    assert result.exit_code == 2 and "--in-flight-bound-ms" in result.output and calls == []


def test_the_report_is_printed_as_json(calls: list[dict]) -> None:
    result = _verify()
    assert json.loads(result.stdout)["rows"] == 0


def test_per_partition_bounds_reach_the_check(calls: list[dict]) -> None:
    assert _verify("--partition-bound-ms", "0=812000", "--partition-bound-ms", "5=4000").exit_code == 0
    assert _verify().exit_code == 0
    assert [c["partition_bounds_ms"] for c in calls] == [{0: 812_000, 5: 4_000}, {}]


@pytest.mark.parametrize("given", ["0", "a=1", "0=-5", "0=1.5"])
def test_a_malformed_partition_bound_is_refused_before_anything_runs(calls: list[dict], given: str) -> None:
    result = _verify("--partition-bound-ms", given)
    assert result.exit_code == 2 and "--partition-bound-ms" in result.output and calls == []


def test_the_dedup_subtasks_default_to_the_running_jobs_parallelism_and_can_be_given(calls: list[dict]) -> None:
    assert _verify().exit_code == 0
    assert _verify("--dedup-subtasks", "4").exit_code == 0
    assert _verify("--dedup-subtasks", "0").exit_code == 0  # per partition only
    assert [c["dedup_subtasks"] for c in calls] == [RUNNING_PARALLELISM, 4, None]


def test_per_request_bounds_are_read_from_their_file(calls: list[dict], tmp_path) -> None:
    path = tmp_path / "bounds.json"
    path.write_text(json.dumps({"req-1": {"0": 20_000, "3": 65_000}, "req-2": {}}))
    assert _verify("--request-bounds", str(path)).exit_code == 0
    assert _verify().exit_code == 0
    assert [c["request_bounds_ms"] for c in calls] == [{"req-1": {0: 20_000, 3: 65_000}, "req-2": {}}, None]


@pytest.mark.parametrize("text", ["[1, 2]", "{\"r\": {\"a\": 1}}", "{\"r\": {\"0\": -1}}", "not json"])
def test_a_malformed_request_bounds_file_is_refused_before_anything_runs(calls: list[dict], tmp_path,
                                                                         text: str) -> None:
    path = tmp_path / "bounds.json"
    path.write_text(text)
    result = _verify("--request-bounds", str(path))
    assert result.exit_code == 2 and "--request-bounds" in result.output and calls == []
