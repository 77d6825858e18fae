"""`ensure_job` resumes a stopped job from the savepoint its last stop recorded (the demo stops follow_graph with
one), never starts it empty when that restore fails, and leaves a running job alone; plain data for the cluster."""

from __future__ import annotations

import pytest

from fyp.pipelines import FOLLOW_GRAPH_JOB
from fyp.stack import submit
from fyp.stack.process import StackError
from fyp.stack.submit import RunningJob, ensure_job, record_savepoint, recorded_savepoint, savepoint_record


@pytest.fixture
def submitted(monkeypatch) -> list[tuple[str, str | None]]:
    """Each submit_job call as (job, from_savepoint); no job runs on the 'cluster'."""
    calls: list[tuple[str, str | None]] = []
    monkeypatch.setattr(submit, "list_jobs", lambda _settings: [])

    def fake_submit(_settings, name, *, properties=None, from_savepoint=None, **_):
        calls.append((name, from_savepoint))
        return "f" * 32

    monkeypatch.setattr(submit, "submit_job", fake_submit)
    return calls


def _savepoint(settings, name: str) -> str:
    directory = settings.data_dir / "flink" / "savepoints" / name
    directory.mkdir(parents=True)
    (directory / "_metadata").write_bytes(b"state")
    return f"file:{directory}"


def test_a_recorded_savepoint_is_where_the_job_resumes(settings, submitted):
    assert recorded_savepoint(settings, "follow_graph") is None
    ensure_job(settings, FOLLOW_GRAPH_JOB)
    savepoint = _savepoint(settings, "savepoint-abc")
    record_savepoint(settings, "follow_graph", savepoint)
    ensure_job(settings, FOLLOW_GRAPH_JOB)
    assert submitted == [("follow_graph", None), ("follow_graph", savepoint)]


def test_a_record_whose_local_files_are_gone_is_ignored(settings, submitted):
    record_savepoint(settings, "follow_graph", f"file:{settings.data_dir}/flink/savepoints/savepoint-gone")
    assert recorded_savepoint(settings, "follow_graph") is None
    ensure_job(settings, FOLLOW_GRAPH_JOB)
    assert submitted == [("follow_graph", None)]


def test_a_failed_restore_is_an_error_that_names_the_record_not_an_empty_start(settings, monkeypatch):
    record_savepoint(settings, "follow_graph", _savepoint(settings, "savepoint-old"))
    calls: list[str | None] = []
    monkeypatch.setattr(submit, "list_jobs", lambda _settings: [])

    def refused(_settings, _name, *, from_savepoint=None, **_):
        calls.append(from_savepoint)
        raise StackError("submitting follow_graph failed (exit 1): cannot map checkpoint state")

    monkeypatch.setattr(submit, "submit_job", refused)
    with pytest.raises(StackError, match="last savepoint") as failure:
        ensure_job(settings, FOLLOW_GRAPH_JOB)
    assert str(savepoint_record(settings, "follow_graph")) in str(failure.value)
    assert len(calls) == 1 and calls[0] is not None  # tried once, from the savepoint, and not again without it


def test_a_running_job_is_left_alone(settings, monkeypatch):
    record_savepoint(settings, "follow_graph", _savepoint(settings, "savepoint-x"))
    monkeypatch.setattr(submit, "list_jobs", lambda _settings: [
        RunningJob(job_id="a" * 32, name=FOLLOW_GRAPH_JOB.pipeline_name, state="RUNNING", start_time_ms=0)])
    monkeypatch.setattr(submit, "submit_job", lambda *_a, **_k: pytest.fail("submitted a running job"))
    assert ensure_job(settings, FOLLOW_GRAPH_JOB) == "a" * 32
