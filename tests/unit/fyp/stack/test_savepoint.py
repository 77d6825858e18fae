"""stop_with_savepoint asks Flink for the savepoint only once every task of the job runs (a job just resumed, or
waiting for a slot, makes Flink answer "Not all required tasks are currently running"), and says why when they
never do."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from fyp.stack import rescale
from fyp.stack.process import StackError

JOB = "0" * 32


def _details(state: str, running: int) -> dict:
    return {"jid": JOB, "state": state, "vertices": [
        {"id": "source", "parallelism": 1, "tasks": {"RUNNING": 1}},
        {"id": "graph", "parallelism": 2, "tasks": {"RUNNING": running, "SCHEDULED": 2 - running}}]}


class FakeFlink:
    """The JobManager's REST answers: the job's details in turn (the last one repeats), a stop, a savepoint."""

    def __init__(self, details: list[dict]) -> None:
        self.details, self.calls = details, []

    def get(self, url: str, **_) -> httpx.Response:
        self.calls.append(("GET", url))
        if "/savepoints/" in url:
            body = {"status": {"id": "COMPLETED"}, "operation": {"location": "file:///sp/savepoint-1"}}
        else:
            body = self.details.pop(0) if len(self.details) > 1 else self.details[0]
        return httpx.Response(200, json=body, request=httpx.Request("GET", url))

    def post(self, url: str, **_) -> httpx.Response:
        self.calls.append(("POST", url))
        return httpx.Response(202, json={"request-id": "t1"}, request=httpx.Request("POST", url))


@pytest.fixture
def settings():
    return SimpleNamespace(flink_rest_url="http://jobmanager")


def test_the_savepoint_waits_for_every_task_to_run(monkeypatch, settings):
    flink = FakeFlink([_details("CREATED", 0), _details("RUNNING", 1), _details("RUNNING", 2)])
    monkeypatch.setattr(rescale.httpx, "get", flink.get)
    monkeypatch.setattr(rescale.httpx, "post", flink.post)
    assert rescale.stop_with_savepoint(settings, JOB, poll_s=0) == "file:///sp/savepoint-1"
    stop = flink.calls.index(("POST", f"http://jobmanager/jobs/{JOB}/stop"))
    assert [c for c in flink.calls[:stop]] == [("GET", f"http://jobmanager/jobs/{JOB}")] * 3  # only once all ran


def test_tasks_that_never_all_run_give_a_clear_error_and_no_stop(monkeypatch, settings):
    flink = FakeFlink([_details("RUNNING", 1)])
    monkeypatch.setattr(rescale.httpx, "get", flink.get)
    monkeypatch.setattr(rescale.httpx, "post", flink.post)
    with pytest.raises(StackError, match=r"did not run every task within 0 s \(job RUNNING, 2 of 3 tasks RUNNING\)"):
        rescale.stop_with_savepoint(settings, JOB, poll_s=0, running_timeout_s=0)
    assert not [c for c in flink.calls if c[0] == "POST"]


def test_an_ended_job_is_named_at_once(monkeypatch, settings):
    flink = FakeFlink([_details("FINISHED", 0)])
    monkeypatch.setattr(rescale.httpx, "get", flink.get)
    with pytest.raises(StackError, match="is FINISHED"):
        rescale.stop_with_savepoint(settings, JOB, poll_s=0)
