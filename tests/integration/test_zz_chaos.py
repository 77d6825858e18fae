"""Chaos (runs after the other tests, before test_zz_stack_down): kill -9 the TaskManager twice and restart the
Kafka broker while events flow; the history must hold every event exactly once and Redis must match it.

The faults hit every job of the shared session stack, so this file runs late (file order) and leaves the stack
healthy: a new TaskManager, the broker back, the jobs running from their checkpoints. `fyp bench chaos` runs
the same thing longer.
"""

from __future__ import annotations

import pytest

from fyp.bench.chaos import jobs_running, run_chaos
from fyp.stack.services import all_services

pytestmark = pytest.mark.integration


def test_history_is_exactly_once_and_features_match_through_taskmanager_kills_and_a_broker_restart(
    settings, running_job,
):
    jobs = [running_job("engagement_history", "fyp-engagement-history",
                        **{"execution.checkpointing.interval": "5s"}),
            running_job("engagement_features", "fyp-engagement-features")]
    result = run_chaos(settings, events=10_000, rate=200, tail_s=2,
                       schedule=[(2, "kill_taskmanager"), (3, "restart_kafka"), (4, "kill_taskmanager")],
                       users=500, videos=1_000, verify_sample=10, land_timeout_s=120, verify_timeout_s=60,
                       on_progress=print)
    print(result)

    assert result.produced > 0 and result.failed == 0
    assert (result.landed, result.duplicates, result.missing) == (result.produced, 0, 0)
    kills = [d for d in result.disruptions if d.kind == "kill_taskmanager"]
    assert len(kills) == 2 and all(d.job_restarts >= len(jobs) and d.jobs_running_s for d in kills), kills
    (broker,) = [d for d in result.disruptions if d.kind == "restart_kafka"]
    assert broker.service_back_s and broker.jobs_running_s, broker
    assert result.verify.get("match", 0) >= 10 and set(result.verify) == {"match"}, result.verify

    # The stack is healthy again for whatever runs next.
    assert all(s.health().healthy for s in all_services(settings))
    assert jobs_running(settings, jobs)
