"""`ensure_job` resumes a stopped job from the savepoint its last stop recorded (the demo stops follow_graph with
one) or from the newest retained checkpoint of the job last submitted for it (a stack restart loses running jobs,
not their checkpoints: fyp/stack/resume.py), never starts it empty when that restore fails, and leaves a running
job alone; plain data for the cluster (files laid out as Flink lays them out)."""

from __future__ import annotations

import json
import os

import pytest

from fyp.pipelines import FOLLOW_GRAPH_JOB
from fyp.stack import submit
from fyp.stack.process import StackError
from fyp.stack.resume import latest_checkpoint, record_submitted, resume_point, submission_record
from fyp.stack.submit import RunningJob, ensure_job, record_savepoint, recorded_savepoint, savepoint_record


@pytest.fixture(autouse=True)
def empty_cluster(monkeypatch) -> None:
    """A JobManager that answers and runs no job, unless a test says otherwise."""
    monkeypatch.setattr(submit, "_require_jobmanager", lambda _settings: None)
    monkeypatch.setattr(submit, "list_jobs", lambda _settings: [])


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
    with pytest.raises(StackError, match="resume from its savepoint") as failure:
        ensure_job(settings, FOLLOW_GRAPH_JOB)
    assert str(savepoint_record(settings, "follow_graph")) in str(failure.value)
    assert len(calls) == 1 and calls[0] is not None  # tried once, from the savepoint, and not again without it


def test_a_running_job_is_left_alone(settings, monkeypatch):
    record_savepoint(settings, "follow_graph", _savepoint(settings, "savepoint-x"))
    monkeypatch.setattr(submit, "list_jobs", lambda _settings: [
        RunningJob(job_id="a" * 32, name=FOLLOW_GRAPH_JOB.pipeline_name, state="RUNNING", start_time_ms=0)])
    monkeypatch.setattr(submit, "submit_job", lambda *_a, **_k: pytest.fail("submitted a running job"))
    assert ensure_job(settings, FOLLOW_GRAPH_JOB) == "a" * 32


def _checkpoints_config(settings, text: str | None = None) -> str:
    """Write the rendered cluster configuration with a file:// checkpoints directory; returns that directory."""
    root = settings.data_dir / "flink" / "checkpoints"
    conf = settings.home / "flink-conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "config.yaml").write_text(text or f"state:\n  checkpoints:\n    dir: file://{root}\n    num-retained: 3\n")
    return str(root)


def _checkpoint(root: str, job_id: str, n: int, complete: bool = True) -> str:
    directory = os.path.join(root, job_id, f"chk-{n}")
    os.makedirs(directory)
    if complete:  # Flink writes _metadata last: a chk-N without it is a checkpoint in progress or failed
        with open(os.path.join(directory, "_metadata"), "wb") as f:
            f.write(b"state")
    return f"file://{directory}"


def test_the_newest_complete_checkpoint_of_the_last_submitted_job_is_where_it_resumes(settings, submitted):
    root = _checkpoints_config(settings)
    ensure_job(settings, FOLLOW_GRAPH_JOB)  # nothing recorded: empty, and this submission is recorded
    assert json.loads(submission_record(settings, "follow_graph").read_text()) == {
        "job_id": "f" * 32, "resumed_from": None}
    _checkpoint(root, "f" * 32, 3)
    newest = _checkpoint(root, "f" * 32, 12)
    _checkpoint(root, "f" * 32, 13, complete=False)
    _checkpoint(root, "e" * 32, 40)  # another job's
    assert latest_checkpoint(settings, "f" * 32) == newest
    ensure_job(settings, FOLLOW_GRAPH_JOB)  # the JobManager went away with the job; its checkpoints did not
    assert submitted == [("follow_graph", None), ("follow_graph", newest)]
    assert json.loads(submission_record(settings, "follow_graph").read_text())["resumed_from"] == newest


def test_a_savepoint_taken_after_the_last_submission_comes_before_its_checkpoints(settings, submitted):
    root = _checkpoints_config(settings)
    record_submitted(settings, "follow_graph", "a" * 32, None)
    _checkpoint(root, "a" * 32, 7)
    savepoint = _savepoint(settings, "savepoint-after")
    record_savepoint(settings, "follow_graph", savepoint)
    submitted_at = submission_record(settings, "follow_graph").stat().st_mtime
    os.utime(submission_record(settings, "follow_graph"), (submitted_at - 60, submitted_at - 60))
    assert resume_point(settings, "follow_graph").path == savepoint
    # ... and once a job resumed from it has checkpointed, its checkpoint is the newer state
    record_submitted(settings, "follow_graph", "b" * 32, savepoint)
    later = _checkpoint(root, "b" * 32, 2)
    assert resume_point(settings, "follow_graph").path == later


def test_a_job_stopped_before_its_first_checkpoint_resumes_from_what_it_resumed_from(settings, submitted):
    root = _checkpoints_config(settings)
    earlier = _checkpoint(root, "a" * 32, 5)
    record_submitted(settings, "follow_graph", "b" * 32, earlier)
    point = resume_point(settings, "follow_graph")
    assert (point.path, point.kind) == (earlier, "checkpoint")
    os.remove(earlier.removeprefix("file://") + "/_metadata")  # gone: nothing to resume from
    assert resume_point(settings, "follow_graph") is None


def test_the_checkpoints_directory_is_read_from_flat_keys_too(settings):
    root = settings.data_dir / "elsewhere"
    _checkpoints_config(settings, f"state.checkpoints.dir: {root}\n")
    path = _checkpoint(str(root), "c" * 32, 1)
    assert latest_checkpoint(settings, "c" * 32) == path.removeprefix("file://")


def test_no_rendered_configuration_means_no_checkpoints(settings):
    assert latest_checkpoint(settings, "c" * 32) is None


def test_fyp_submit_resumes_by_default_and_starts_empty_only_when_told(settings, monkeypatch):
    from typer.testing import CliRunner

    from fyp.cli import app

    calls: list[str | None] = []

    def fake_submit(_settings, name, *, from_savepoint=None, **_):
        calls.append(from_savepoint)
        return f"{len(calls):032d}"

    monkeypatch.setattr(submit, "submit_job", fake_submit)
    root = _checkpoints_config(settings)
    runner = CliRunner()
    first = runner.invoke(app, ["submit", "engagement_features", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["resumed_from"] is None
    newest = _checkpoint(root, calls and f"{1:032d}", 4)
    resumed = runner.invoke(app, ["submit", "engagement_features.py", "--json"])
    assert json.loads(resumed.output)["resumed_from"] == newest
    fresh = runner.invoke(app, ["submit", "engagement_features", "--fresh", "--json"])
    assert json.loads(fresh.output)["resumed_from"] is None
    assert calls == [None, newest, None]
    both = runner.invoke(app, ["submit", "engagement_features", "--fresh", "--from-savepoint", "file:/x"])
    assert both.exit_code == 2 and "--fresh" in both.output


def test_fyp_submit_refuses_a_job_already_alive_unless_told(settings, monkeypatch):
    from typer.testing import CliRunner

    from fyp.cli import app
    from fyp.pipelines import ENGAGEMENT_HISTORY_JOB

    submitted: list[str] = []
    alive = [submit.RunningJob(job_id="a" * 32, name=ENGAGEMENT_HISTORY_JOB.pipeline_name, state="RESTARTING",
                               start_time_ms=1),
             submit.RunningJob(job_id="b" * 32, name="fyp-engagement-features", state="CANCELED", start_time_ms=1)]
    monkeypatch.setattr(submit, "list_jobs", lambda _settings: alive)
    monkeypatch.setattr(submit, "submit_job", lambda _settings, name, **_: submitted.append(name) or "c" * 32)
    runner = CliRunner()
    refused = runner.invoke(app, ["submit", "engagement_history"])
    assert refused.exit_code == 1 and "a" * 32 in refused.output and "--allow-duplicate" in refused.output
    assert submitted == []
    # A cancelled copy of another job is no reason to refuse.
    assert runner.invoke(app, ["submit", "engagement_features"]).exit_code == 0
    skipped = runner.invoke(app, ["submit", "engagement_history", "--skip-if-running", "--json"])
    assert skipped.exit_code == 0, skipped.output
    assert json.loads(skipped.output) == {"job": "engagement_history", "job_id": "a" * 32, "resumed_from": None,
                                          "already_running": True}
    assert submitted == ["engagement_features"]
    told = runner.invoke(app, ["submit", "engagement_history", "--allow-duplicate", "--json"])
    assert told.exit_code == 0, told.output
    assert json.loads(told.output)["already_running"] is False
    assert submitted == ["engagement_features", "engagement_history"]
