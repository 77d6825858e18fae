"""The foundation end to end on real services: stack health, CLI, Kafka -> Flink -> Redis and -> Iceberg, DLQ."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from connectors.iceberg_tables import catalog
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.serving import FeatureClient
from fyp.stack.observe import dead_letter_count
from schemas.tables import ENGAGEMENT_HISTORY
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

FYP = [sys.executable, "-m", "fyp.cli"]


def fyp(*args: str) -> dict:
    result = subprocess.run([*FYP, *args], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"fyp {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def test_status_reports_every_service_healthy_on_loopback(settings):
    status = fyp("status", "--json")
    assert status["healthy"] is True
    names = {s["name"] for s in status["services"]}
    assert names == {"kafka", "redis", "seaweedfs", "lake-maintenance", "flink-jobmanager", "flink-taskmanager"}
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    for line in listening.splitlines():
        pids = {str(s["pid"]) for s in status["services"]}
        if any(f"pid={pid}," in line for pid in pids):
            local = line.split()[3]
            assert local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")), f"not loopback: {line}"


def test_up_is_idempotent(settings):
    first = fyp("up", "--json")
    assert set(first["started"]) == {"kafka", "redis", "seaweedfs", "lake-maintenance", "flink-jobmanager",
                                     "flink-taskmanager"}


def test_produce_cli_writes_the_requested_number_of_events(settings):
    report = fyp("produce", "--events", "5000", "--rate", "0", "--users", "500", "--videos", "500",
                 "--seed", "3", "--json")
    assert report["produced"] == 5000 and report["failed"] == 0
    assert sum(report["by_type"].values()) == 5000


def test_events_reach_redis_features_and_iceberg_history(settings, running_job, engagement_producer):
    running_job(ENGAGEMENT_FEATURES_JOB)
    running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    video = f"v-it-{uuid.uuid4().hex[:8]}"
    sent = [engagement_producer.send("Impression", user_id="u-it", video_id=video, position=i, surface="for_you")
            for i in range(4)]
    sent += [engagement_producer.send("Watch", user_id="u-it", video_id=video, watch_ms=9_800,
                                      video_duration_ms=10_000) for _ in range(3)]
    engagement_producer.flush()

    client = FeatureClient.from_settings(settings)
    # Both counts together: the job deduplicates on event_id (a shuffle by event id) before it aggregates by
    # video, so a video's events can reach its aggregate out of their Kafka order, and a value with the three
    # plays but not yet the fourth impression can be read for a moment (seen once in a full run).
    features = eventually(lambda: (f := client.get("video", video)) and f.values["plays_1m"] == 3
                          and f.values["impressions_1h"] == 4 and f,
                          timeout_s=90, message=f"video features of {video} in Redis")
    assert features.values["completion_rate_1h"] == pytest.approx(1.0)
    # The recent-seen serving set is written per event (ZADD GT), with no aggregation in the job.
    assert eventually(lambda: video in client.for_request("u-it", [video]).recent_seen, timeout_s=30,
                      message=f"{video} in u-it's recent-seen set")

    table_ids = set(sent)

    def landed() -> set[str]:
        table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
        rows = table.scan(row_filter=f"video_id == '{video}'", selected_fields=("event_id",)).to_arrow()
        return set(rows.column("event_id").to_pylist())

    assert eventually(lambda: landed() == table_ids and table_ids, timeout_s=90,
                      message="the events in the Iceberg history table")


def test_fyp_submit_refuses_a_second_copy_of_a_job_on_the_cluster(settings, running_job):
    """Two history jobs would commit every event to Iceberg twice; `fyp submit` refuses and names the running one."""
    job_id = running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    result = subprocess.run([*FYP, "submit", "engagement_history"], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert job_id in result.stdout + result.stderr and "--allow-duplicate" in result.stdout + result.stderr
    alive = [j for j in fyp("jobs", "--json")["jobs"]
             if j["name"] == ENGAGEMENT_HISTORY_JOB.pipeline_name and j["state"] == "RUNNING"]
    assert [j["job_id"] for j in alive] == [job_id]


def test_malformed_events_go_to_the_dead_letter_topic(settings, running_job, engagement_producer):
    running_job(ENGAGEMENT_FEATURES_JOB)
    before = dead_letter_count(settings)
    engagement_producer.send_raw(b"not avro at all")
    engagement_producer.send("Watch", user_id="u-bad", video_id="v-bad", watch_ms=-1, video_duration_ms=1000)
    engagement_producer.flush()
    eventually(lambda: dead_letter_count(settings) >= before + 2, timeout_s=60, message="two dead letters")
