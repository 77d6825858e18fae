"""A stack restart loses the running jobs, not their state: the next submission resumes from the newest retained
checkpoint (fyp/stack/resume.py), so the features keep counting where they were instead of starting again from the
events since the restart (which would overwrite every Redis value with a smaller one).

Real services: the test stack's JobManager and TaskManager processes are stopped and started again, as `fyp down`
and `fyp up` stop and start them. Runs late in the suite (test_zz_): every job of the cluster goes with them, and
the tests after it resubmit theirs (each resuming from its own checkpoints).
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
from fyp.serving import FeatureClient
from fyp.stack.flink_cluster import JobManagerService, taskmanager_services
from fyp.stack.resume import latest_checkpoint, resume_point
from fyp.stack.seaweedfs import s3_client
from fyp.stack.submit import ALIVE_STATES, list_jobs
from schemas.topics import ENGAGEMENT
from tests.integration.conftest import eventually, video_plays
from tests.integration.test_exploration import end_offsets
from tests.integration.test_restart_from_checkpoint import checkpoint

pytestmark = pytest.mark.integration


def test_the_newest_complete_checkpoint_is_found_on_s3(settings):
    """The cluster profile keeps checkpoints on s3:// (SeaweedFS here): the same rule as on file://."""
    client, bucket = s3_client(settings), f"it-checkpoints-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    job = "c" * 32
    for key in (f"flink/checkpoints/{job}/chk-2/_metadata", f"flink/checkpoints/{job}/chk-11/_metadata",
                f"flink/checkpoints/{job}/chk-12/part-0",  # in progress: no _metadata yet
                f"flink/checkpoints/{job}/shared/sst-1", f"flink/checkpoints/{'d' * 32}/chk-30/_metadata"):
        client.put_object(Bucket=bucket, Key=key, Body=b"state")
    assert latest_checkpoint(settings, job, f"s3://{bucket}/flink/checkpoints") == \
        f"s3://{bucket}/flink/checkpoints/{job}/chk-11"
    assert latest_checkpoint(settings, "e" * 32, f"s3://{bucket}/flink/checkpoints") is None


def test_a_job_resumes_from_its_retained_checkpoint_after_the_stack_restarts(settings, running_job,
                                                                              engagement_producer):
    job = running_job(ENGAGEMENT_FEATURES_JOB)
    tag = uuid.uuid4().hex[:8]
    video = f"{tag}-resumed"
    client = FeatureClient.from_settings(settings)

    def watch(n: int, first: int) -> None:
        for i in range(first, first + n):
            engagement_producer.send("Watch", user_id=f"{tag}-u{i}", video_id=video, watch_ms=1_000,
                                     video_duration_ms=10_000)
        engagement_producer.flush()

    watch(3, 0)
    eventually(lambda: video_plays(client, video) == 3, timeout_s=60, message="the plays before the restart")
    # A completed checkpoint commits the job's offsets to its consumer group (asynchronously), where an empty start
    # would read from: it would see only the events sent after the restart. Checkpoint until every event is in one.
    end = end_offsets(settings, ENGAGEMENT)

    def checkpointed_all() -> str | None:
        path = checkpoint(settings, job)
        for _ in range(10):
            committed = committed_offsets(settings, ENGAGEMENT_FEATURES_JOB.group_id)
            if all(committed[p] == offset for p, offset in end.items() if offset):  # an empty one has none
                return path
            time.sleep(0.5)
        return None

    taken = eventually(checkpointed_all, timeout_s=60, interval_s=2, message="a checkpoint of every event, committed")

    services = [JobManagerService(settings), *taskmanager_services(settings)]
    for service in reversed(services):
        service.stop()
    for service in services:
        service.start()
    alive = [j for j in list_jobs(settings) if j.state in ALIVE_STATES]
    assert alive == [], "a restarted standalone JobManager has no jobs"

    point = resume_point(settings, ENGAGEMENT_FEATURES_JOB.job)
    assert point is not None and point.kind == "checkpoint" and point.job_id == job
    assert int(point.path.rsplit("chk-", 1)[1]) >= int(taken.rsplit("chk-", 1)[1])  # a periodic one may be newer
    resumed = running_job(ENGAGEMENT_FEATURES_JOB)
    assert resumed != job
    restored = eventually(lambda: httpx.get(f"{settings.flink_rest_url}/jobs/{resumed}/checkpoints", timeout=10)
                          .json().get("latest", {}).get("restored"), timeout_s=60, message="the restore")
    assert restored["external_path"].endswith(point.path.split(job, 1)[1]), restored

    watch(2, 3)  # an empty start would count these 2 alone, and write 2 over the 3
    eventually(lambda: video_plays(client, video) == 5, timeout_s=90,
               message="the plays before and after the restart, together")


def committed_offsets(settings, group_id: str) -> dict[int, int]:
    consumer = Consumer({**settings.kafka_client_config(), "group.id": group_id, "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(ENGAGEMENT.name, p) for p in range(ENGAGEMENT.partitions)],
                                   timeout=10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()
