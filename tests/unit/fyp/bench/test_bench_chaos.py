"""fyp bench chaos: reading restarts and recovery from the JobManager's REST answers (shapes copied from a
Flink 2.2.1 cluster), and reaping the processes it kills."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from fyp.bench.chaos import (
    JobView,
    all_tasks_running,
    recovered,
    recovery_seconds,
    restarts_since,
    running_since,
)
from fyp.stack.process import reap, spawn, stop_pid


def _counts(running: int = 0, **others: int) -> dict[str, int]:
    states = ("CANCELING", "RUNNING", "SCHEDULED", "DEPLOYING", "FINISHED", "FAILED", "RECONCILING",
              "INITIALIZING", "CREATED", "CANCELED")
    return {s: 0 for s in states} | {"RUNNING": running} | others


def _details(state: str, *vertices: tuple[str, str, int, dict[str, int]]) -> dict:
    return {"jid": "4ec3e4672611c383723b4fef5a36fdf7", "name": "fyp-engagement-history", "state": state,
            "timestamps": {"RUNNING": 1796535732070, "RESTARTING": 1796535731061},
            "vertices": [{"id": vid, "name": f"vertex {vid}", "parallelism": n, "status": status, "tasks": tasks}
                         for vid, status, n, tasks in vertices]}


def _exceptions(*timestamps: int) -> dict:
    return {"exceptionHistory": {"truncated": False, "entries": [
        {"exceptionName": "org.apache.flink.runtime.jobmaster.JobMasterException", "timestamp": t,
         "taskManagerId": "127.0.0.1:37821-4fe7ba", "concurrentExceptions": [], "failureLabels": {}}
        for t in timestamps]}}


def _view(state: str = "RUNNING", *, running: tuple[int, int] = (2, 1), failures: tuple[int, ...] = ()) -> JobView:
    return JobView.parse(_details(state, ("source", "RUNNING", 2, _counts(running[0], CREATED=2 - running[0])),
                                  ("committer", "RUNNING", 1, _counts(running[1], CREATED=1 - running[1]))),
                         _exceptions(*failures))


def test_parse_reads_state_tasks_and_failure_times() -> None:
    view = _view(failures=(1796535841118, 1796535731060))
    assert view.job_id == "4ec3e4672611c383723b4fef5a36fdf7" and view.state == "RUNNING"
    assert view.tasks == (("source", 2, 2), ("committer", 1, 1))
    assert view.failures == (1796535841118, 1796535731060)


def test_all_tasks_running_counts_tasks_not_the_vertex_status() -> None:
    assert all_tasks_running(_view())
    # Flink calls a vertex RUNNING once one of its tasks is: 1 of 2 running is not recovered.
    half = JobView.parse(_details("RUNNING", ("source", "RUNNING", 2, _counts(1, DEPLOYING=1))), _exceptions())
    assert not all_tasks_running(half)
    assert not all_tasks_running(_view("RESTARTING"))
    assert not all_tasks_running(_view(running=(2, 0)))
    assert not all_tasks_running(JobView.parse(_details("RUNNING"), _exceptions()))  # no vertices: not known


def test_restarts_are_the_exception_history_entries_newer_than_before() -> None:
    before = _view(failures=(2_000, 1_000))
    assert restarts_since(before, before) == 0
    assert restarts_since(before, _view(failures=(3_500, 3_000, 2_000, 1_000))) == 2
    # Flink keeps 16 entries: the old ones dropping out of the history do not make new restarts.
    assert restarts_since(before, _view(failures=(3_000,))) == 1
    assert restarts_since(_view(), _view(failures=(5, 4))) == 2  # no failure before: every entry is new


def test_recovered_needs_every_job_running_and_restarted_when_asked() -> None:
    before = {"a": _view(failures=(1_000,)), "b": _view()}
    running_unrestarted = {"a": _view(failures=(1_000,)), "b": _view()}
    assert recovered(before, running_unrestarted, must_restart=False)
    # A killed TaskManager: until the JobManager notices (a heartbeat later) the jobs still look RUNNING.
    assert not recovered(before, running_unrestarted, must_restart=True)
    one_restarted = {"a": _view(failures=(2_000, 1_000)), "b": _view()}
    assert not recovered(before, one_restarted, must_restart=True)
    both = {"a": _view(failures=(2_000, 1_000)), "b": _view(failures=(2_100,))}
    assert recovered(before, both, must_restart=True)
    restarting = {"a": _view(failures=(2_000, 1_000)), "b": _view("RESTARTING", failures=(2_100,))}
    assert not recovered(before, restarting, must_restart=True)
    assert not recovered(before, {"a": both["a"]}, must_restart=False)  # a job not seen yet


def test_recovery_is_the_last_task_running_after_the_fault() -> None:
    times = {"subtasks": [
        {"subtask": 0, "timestamps": {"CREATED": 1796536088089, "RUNNING": 1796536089320, "FAILED": 0}},
        {"subtask": 1, "timestamps": {"CREATED": 1796536088089, "RUNNING": 1796536089327, "FAILED": 0}}]}
    assert running_since(times) == [1796536089320, 1796536089327]
    assert running_since({"subtasks": [{"subtask": 0, "timestamps": {"CREATED": 5, "RUNNING": 0}}]}) == [0]
    assert recovery_seconds(1796536050000, [1796536089320, 1796536089327, 1796536070000]) == 39.33
    # A broker restart that no task had to restart for: the tasks ran all along.
    assert recovery_seconds(1796536050000, [1796535000000, 1796535000100]) == 0.0
    assert recovery_seconds(1796536050000, []) == 0.0


def _state(pid: int) -> str:
    """The process state letter (Z: zombie), or "gone" once nothing is left of it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_a_killed_child_is_reaped_not_left_a_zombie(tmp_path) -> None:
    pid = spawn([sys.executable, "-c", "import time; time.sleep(60)"], pid_file=tmp_path / "x.pid",
                log_file=tmp_path / "x.log")
    assert not reap(pid, timeout_s=0)  # still running
    os.killpg(pid, signal.SIGKILL)
    assert reap(pid, timeout_s=10)
    assert _state(pid) == "gone"


def test_stop_pid_reaps_the_child_it_stops(tmp_path) -> None:
    pid = spawn([sys.executable, "-c", "import time; time.sleep(60)"], pid_file=tmp_path / "x.pid",
                log_file=tmp_path / "x.log")
    stop_pid(pid, timeout_s=5)
    assert _state(pid) == "gone"
