"""Rescale a running Flink job: stop it with a savepoint (REST API), then resubmit it from there at a new parallelism.

Keyed state moves with its key groups, so the new parallelism may be anything up to the job's max parallelism
(`Pipeline.max_parallelism`, fyp/pipelines.py). Stop-with-savepoint rather than a savepoint then a cancel: no
record is processed, nor any transaction committed, between the savepoint and the stop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from fyp.config import Settings
from fyp.pipelines import pipeline
from fyp.stack.process import StackError
from fyp.stack.submit import all_tasks_running, list_jobs, submit_resuming, task_counts

__all__ = ["Rescaled", "rescale_job", "stop_with_savepoint"]


@dataclass(frozen=True, kw_only=True)
class Rescaled:
    """What `fyp rescale` did: the job it stopped, the savepoint, the job it started from it."""

    job: str
    old_job_id: str
    new_job_id: str
    savepoint: str
    parallelism: int
    seconds: float  # from the stop request until the new job was submitted


def stop_with_savepoint(
    settings: Settings, job_id: str, *, target_dir: str | None = None, timeout_s: float = 300,
    poll_s: float = 0.5, running_timeout_s: float = 120,
) -> str:
    """Stop `job_id` with a savepoint (`POST /jobs/:id/stop`) and return the savepoint's path once it completes.

    target_dir: where to write it; default `state.savepoints.dir` of the cluster's config (file:// in the single
    profile, s3:// in the cluster profile). timeout_s: how long to wait for the savepoint, in seconds.
    running_timeout_s: how long to wait first for every task of the job to run: Flink refuses a savepoint ("Not all
    required tasks are currently running") while any waits for a slot or is deploying, as a job just resumed does.
    """
    base = f"{settings.flink_rest_url}/jobs/{job_id}"
    _await_tasks_running(base, job_id, running_timeout_s, poll_s)
    body: dict[str, object] = {"drain": False}
    if target_dir:
        body["targetDirectory"] = target_dir
    response = httpx.post(f"{base}/stop", json=body, timeout=10)
    if response.status_code == 404:
        raise StackError(f"the cluster has no job {job_id}; `fyp jobs` lists them")
    response.raise_for_status()
    trigger = response.json()["request-id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = httpx.get(f"{base}/savepoints/{trigger}", timeout=10)
        result.raise_for_status()
        state = result.json()
        if state["status"]["id"] == "COMPLETED":
            operation = state.get("operation") or {}
            if "location" not in operation:
                cause = (operation.get("failure-cause") or {}).get("stack-trace", "no cause given")
                raise StackError(f"stop-with-savepoint of {job_id} failed; the job keeps running:\n"
                                 f"{cause.splitlines()[0] if cause else ''}")
            return operation["location"]
        time.sleep(poll_s)
    raise StackError(f"the savepoint of {job_id} did not complete within {timeout_s:.0f} s")


def _await_tasks_running(base: str, job_id: str, timeout_s: float, poll_s: float) -> None:
    """Return once every task of the job runs; a StackError when the job has ended or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(base, timeout=10)
        if response.status_code == 404:
            raise StackError(f"the cluster has no job {job_id}; `fyp jobs` lists them")
        response.raise_for_status()
        details = response.json()
        state, tasks = details["state"], task_counts(details)
        if all_tasks_running(state, tasks):
            return
        if state in ("FAILED", "CANCELED", "FINISHED"):
            raise StackError(f"job {job_id} is {state}: there is nothing to stop with a savepoint")
        if time.monotonic() >= deadline:
            running, total = sum(r for _, _, r in tasks), sum(n for _, n, _ in tasks)
            raise StackError(f"job {job_id} did not run every task within {timeout_s:.0f} s (job {state}, "
                             f"{running} of {total} tasks RUNNING), and Flink takes no savepoint before: is a "
                             "TaskManager slot free? (`fyp jobs`, the Flink UI)")
        time.sleep(poll_s)


def rescale_job(
    settings: Settings, job: str, parallelism: int, *, job_args: list[str] | None = None,
    savepoint_timeout_s: float = 300,
) -> Rescaled:
    """Stop the running job of `jobs/<job>.py` with a savepoint and resubmit it from there with `-p parallelism`.

    job_args: arguments for the job itself, as `fyp submit` passes them (the first submission's are not known
    to the cluster, so give them again if the job was started with any).
    """
    try:
        entry = pipeline(job)  # a misspelt name fails here, before the cluster is asked
    except KeyError as exc:
        raise StackError(exc.args[0]) from None
    if not 1 <= parallelism <= entry.max_parallelism:
        raise StackError(f"parallelism {parallelism} is not in 1..{entry.max_parallelism} "
                         f"(the max parallelism of {entry.job}, fyp/pipelines.py)")
    running = [j for j in list_jobs(settings) if j.name == entry.pipeline_name and j.state == "RUNNING"]
    if not running:
        raise StackError(f"no RUNNING job {entry.pipeline_name} on the cluster to rescale; `fyp jobs` lists them")
    old = max(running, key=lambda j: j.start_time_ms)
    started = time.monotonic()
    savepoint = stop_with_savepoint(settings, old.job_id, timeout_s=savepoint_timeout_s)
    # Recorded, so that a later restart resumes from the new job's checkpoints (fyp.stack.resume).
    # allow_duplicate: the stopped job may still be listed as alive for a moment after its savepoint completes.
    new_job_id, _ = submit_resuming(settings, entry.job, from_savepoint=savepoint, parallelism=parallelism,
                                    job_args=job_args, allow_duplicate=True)
    return Rescaled(job=entry.job, old_job_id=old.job_id, new_job_id=new_job_id, savepoint=savepoint,
                    parallelism=parallelism, seconds=round(time.monotonic() - started, 2))
