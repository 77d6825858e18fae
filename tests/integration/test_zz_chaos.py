"""Chaos (runs after the other tests, before test_zz_stack_down): kill -9 the TaskManager twice and restart the
Kafka broker while events flow; the history must hold every event exactly once and Redis must match it, and each
kill must show up as restarts of every job with a measured recovery time.

The faults hit every job of the shared session stack, so this file runs late (file order) and leaves the stack
healthy: a new TaskManager, the broker back, the jobs running from their checkpoints. `fyp bench chaos` runs
the same thing longer.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fyp.bench.chaos import jobs_running, run_chaos
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.stack.services import all_services

pytestmark = pytest.mark.integration


def _zombie_children() -> list[int]:
    """Pids of this process's children that exited and were never waited for."""
    zombies = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if state == "Z" and int(ppid) == os.getpid():
            zombies.append(int(stat.parent.name))
    return zombies


def test_history_is_exactly_once_and_features_match_through_taskmanager_kills_and_a_broker_restart(
    settings, running_job,
):
    jobs = [running_job(ENGAGEMENT_HISTORY_JOB,
                        **{"execution.checkpointing.interval": "5s"}),
            running_job(ENGAGEMENT_FEATURES_JOB)]
    result = run_chaos(settings, events=10_000, rate=200, tail_s=2,
                       schedule=[(2, "kill_taskmanager"), (3, "restart_kafka"), (4, "kill_taskmanager")],
                       users=500, videos=1_000, verify_sample=10, land_timeout_s=120, verify_timeout_s=60,
                       on_progress=print)
    print(result)

    assert result.produced > 0 and result.failed == 0
    assert (result.landed, result.duplicates, result.missing) == (result.produced, 0, 0)
    # Each kill: every job restarted at least once, and the time until all their tasks ran again is known.
    kills = [d for d in result.disruptions if d.kind == "kill_taskmanager"]
    assert len(kills) == 2, result.disruptions
    for kill in kills:
        assert kill.job_restarts >= len(jobs), kill
        assert kill.service_back_s is not None and kill.jobs_running_s is not None, kill
        assert 0 < kill.jobs_running_s < 180, kill
    (broker,) = [d for d in result.disruptions if d.kind == "restart_kafka"]
    assert broker.service_back_s and broker.jobs_running_s is not None, broker
    # The second kill hits the TaskManager that run_chaos started in this process after the first (and, when
    # this session started the stack, the first kill and the broker restart hit its children too): whatever
    # was killed or stopped has been waited for, not left a zombie.
    assert _zombie_children() == [], _zombie_children()
    assert result.verify.get("match", 0) >= 10 and set(result.verify) == {"match"}, result.verify

    # The stack is healthy again for whatever runs next.
    assert all(s.health().healthy for s in all_services(settings))
    assert jobs_running(settings, jobs)
