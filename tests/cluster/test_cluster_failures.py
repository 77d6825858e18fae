"""Kafka and Flink as clusters under faults, while generated traffic flows (fyp.bench.chaos.run_chaos).

- One of three Kafka brokers SIGKILLed and kept down 10 s: with RF 3 and min.insync.replicas 2 the others take
  over its partitions, so producers (acks=all, idempotent) see no failed delivery, and the Iceberg history holds
  every produced event exactly once.
- One Redis Cluster primary SIGKILLed: its replica is promoted after the node timeout; the features job's Redis
  writer keeps what it could not write and retries it, so Redis ends equal to the recomputation from the history.
- One of two TaskManagers SIGKILLed: every job restarts from its last checkpoint (on S3) and the same
  exactly-once count holds. The killed TaskManager is started again at once, so the jobs run on whichever
  slots come first: the 4 left, or the new TaskManager's.

Each prints its recovery times; docs/OPERATIONS.md ("Cluster profile") quotes them.
"""

from __future__ import annotations

import pytest

from fyp.bench.chaos import Disruption, jobs_running, run_chaos
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.stack.services import all_services

pytestmark = pytest.mark.integration

CHAOS = {"events": 6_000, "rate": 200, "tail_s": 3, "users": 500, "videos": 1_000, "verify_sample": 10,
         "land_timeout_s": 120, "verify_timeout_s": 60, "on_progress": print}


def fault_under_traffic(settings, running_job, kind: str) -> Disruption:
    """Run `kind` 3 s into 6,000 events at 200/s; check exactly once, Redis and the stack after it; return it."""
    job_ids = [running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"}),
               running_job(ENGAGEMENT_FEATURES_JOB)]
    result = run_chaos(settings, schedule=[(3, kind)], **CHAOS)
    print(result)
    assert result.produced > 0 and result.failed == 0, result  # no failed delivery at the producer
    assert (result.landed, result.duplicates, result.missing) == (result.produced, 0, 0), result
    assert result.verify.get("match", 0) >= 10 and set(result.verify) == {"match"}, result.verify  # Redis too
    assert all(s.health().healthy for s in all_services(settings))
    assert jobs_running(settings, job_ids)
    (fault,) = result.disruptions
    print(f"{kind}: service back {fault.service_back_s} s, every task running {fault.jobs_running_s} s after "
          f"the fault, {fault.job_restarts} job restarts")
    return fault


def test_a_broker_killed_while_traffic_flows_loses_and_duplicates_nothing(settings, running_job):
    assert settings.is_cluster and len(settings.kafka_brokers) == 3 and settings.kafka_min_insync_replicas == 2
    kill = fault_under_traffic(settings, running_job, "kill_kafka")  # down 10 s of it on purpose
    assert kill.service_back_s is not None and kill.jobs_running_s is not None, kill


def test_one_taskmanager_of_two_killed_keeps_the_history_exactly_once(settings, running_job):
    assert settings.taskmanagers == 2
    kill = fault_under_traffic(settings, running_job, "kill_taskmanager")
    assert kill.job_restarts >= 1 and kill.jobs_running_s is not None and 0 < kill.jobs_running_s < 180, kill


def test_a_redis_primary_killed_while_traffic_flows_leaves_redis_equal_to_the_history(settings, running_job):
    assert len(settings.redis_cluster_nodes) == 6
    kill = fault_under_traffic(settings, running_job, "kill_redis_primary")
    assert kill.service_back_s is not None and kill.service_back_s < 60, kill  # the replica took over
    assert kill.jobs_running_s is not None, kill
