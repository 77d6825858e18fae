"""The broker down while the jobs run: neither the features nor the history job fails over, and every event sent
before and after the outage is featured and kept exactly once (real broker stopped with SIGTERM, then started).

Runs late in the suite (test_zx_): it stops a service the other tests share, and a broker or Redis still
recovering must not bleed into them.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.serving import FeatureClient
from fyp.stack.kafka_broker import KafkaService
from tests.integration.conftest import eventually, video_plays
from tests.integration.test_hostile_events import _failovers, _history_ids

pytestmark = pytest.mark.integration

# FYP_TEST_OUTAGE_S=120 gives the two-minute outage of the issue; the suite keeps it short.
OUTAGE_S = int(os.environ.get("FYP_TEST_OUTAGE_S", "30"))


def test_a_broker_outage_loses_nothing_and_restarts_nothing(settings, running_job, engagement_producer):
    jobs = (running_job(ENGAGEMENT_FEATURES_JOB),
            running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"}))
    tag = uuid.uuid4().hex[:8]
    video = f"{tag}-v"
    client = FeatureClient.from_settings(settings)

    def watch(i: int) -> str:
        return engagement_producer.send("Watch", user_id=f"{tag}-u{i}", video_id=video, watch_ms=1_000,
                                        video_duration_ms=10_000)

    sent = {watch(i) for i in range(3)}
    engagement_producer.flush()
    eventually(lambda: video_plays(client, video) == 3, timeout_s=60, message="plays before the outage")
    failovers = {job: _failovers(settings, job) for job in jobs}

    broker = KafkaService(settings)
    broker.stop()
    try:
        time.sleep(OUTAGE_S)
        assert {job: _failovers(settings, job) for job in jobs} == failovers, "a job failed over during the outage"
    finally:
        broker.start()

    sent |= {watch(i) for i in range(3, 6)}
    engagement_producer.flush()
    eventually(lambda: video_plays(client, video) == 6, timeout_s=90, message="plays after the outage")
    eventually(lambda: _history_ids(settings, sent) == sent, timeout_s=120, message="every event in the history")
    assert {job: _failovers(settings, job) for job in jobs} == failovers, "a job failed over"
