"""`fyp demo` on a kept stack first stops the last demo's video_embeddings, which holds 2 of the 8 slots the demo's
jobs need: a running one with a savepoint that is recorded (so the demo's own submit resumes it), one still
waiting for a slot by a cancel (`_pause_embedding_job`); plain data for the cluster."""

from __future__ import annotations

from rich.console import Console

from fyp.commands import demo
from fyp.pipelines import FOLLOW_GRAPH_JOB, VIDEO_EMBEDDINGS_JOB
from fyp.stack import rescale, submit
from fyp.stack.submit import RunningJob, recorded_savepoint


def _jobs(monkeypatch, *jobs: tuple[str, str, str]) -> list[tuple[str, str]]:
    """The 'cluster' runs `jobs` (id, pipeline name, state); returns the stops and cancels made, in order."""
    actions: list[tuple[str, str]] = []
    monkeypatch.setattr(submit, "list_jobs", lambda _s: [RunningJob(job_id=i, name=n, state=st, start_time_ms=0)
                                                          for i, n, st in jobs])

    def stop(_settings, job_id):
        actions.append(("stop", job_id))
        savepoint = _settings.data_dir / "flink" / "savepoints" / f"savepoint-{job_id}"
        savepoint.mkdir(parents=True)
        (savepoint / "_metadata").write_bytes(b"state")
        return f"file:{savepoint}"

    monkeypatch.setattr(rescale, "stop_with_savepoint", stop)
    monkeypatch.setattr(demo, "cancel_job", lambda _s, job_id: actions.append(("cancel", job_id)))
    return actions


def test_a_running_embedding_job_is_stopped_with_a_recorded_savepoint(settings, monkeypatch):
    actions = _jobs(monkeypatch, ("e1", VIDEO_EMBEDDINGS_JOB.pipeline_name, "RUNNING"),
                    ("f1", FOLLOW_GRAPH_JOB.pipeline_name, "RUNNING"))
    demo._pause_embedding_job(settings, out=Console(quiet=True))
    assert actions == [("stop", "e1")]  # the other jobs are left alone
    assert recorded_savepoint(settings, VIDEO_EMBEDDINGS_JOB.job).endswith("savepoint-e1")


def test_one_waiting_for_a_slot_is_cancelled_and_none_is_left_alone(settings, monkeypatch):
    actions = _jobs(monkeypatch, ("e2", VIDEO_EMBEDDINGS_JOB.pipeline_name, "RESTARTING"),
                    ("e0", VIDEO_EMBEDDINGS_JOB.pipeline_name, "CANCELED"))
    demo._pause_embedding_job(settings, out=Console(quiet=True))
    assert actions == [("cancel", "e2")]
    assert recorded_savepoint(settings, VIDEO_EMBEDDINGS_JOB.job) is None
    actions = _jobs(monkeypatch)
    demo._pause_embedding_job(settings, out=Console(quiet=True))
    assert actions == []
