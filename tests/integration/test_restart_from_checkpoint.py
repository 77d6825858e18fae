"""A features job restored from its checkpoint leaves Redis equal to a recomputation: no double counting.

Events A are processed and checkpointed; events B1 are processed (Redis shows them) but not checkpointed;
the job is cancelled and restarted from the checkpoint, so it replays B1 from Kafka onto the state of A;
then events B2 arrive. Redis must hold exactly what a plain-Python recomputation of A + B1 + B2 gives
(featurespec.reference.evaluate, the same evaluator `fyp verify features` uses). Increments, or state and offsets
out of step, would count B1 twice.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import httpx
import numpy as np
import pytest

from features.engagement import video_engagement
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import engagement_row
from fyp.stack.submit import cancel_job, submit_job
from schemas.topics import ENGAGEMENT
from tests.integration.conftest import eventually
from tests.integration.test_exploration import end_offsets

pytestmark = pytest.mark.integration

FEATURES = video_engagement.v1


class SentEvents:
    """Sends engagement events and keeps their engagement rows for the recomputation."""

    def __init__(self, producer) -> None:
        self.producer = producer
        self.rows: list[tuple] = []
        self.clock = int(time.time() * 1000) - 30_000  # strictly increasing event times, all recent

    def send(self, record_name: str, video_id: str, **fields) -> None:
        self.clock += 7
        self.producer.send(record_name, user_id=f"u-{video_id}", video_id=video_id, event_time=self.clock, **fields)
        event_type = {"Impression": "impression", "Watch": "watch", "Like": "like"}[record_name]
        self.rows.append(engagement_row(
            event_type=event_type, event_time=self.clock, video_id=video_id, user_id=f"u-{video_id}",
            author_id="author-it", region="US", language="en", hashtags=["it"], watch_ms=fields.get("watch_ms"),
            video_duration_ms=fields.get("video_duration_ms"), action=fields.get("action")))

    def views(self, video_id: str, n: int, *, complete: bool, like: bool) -> None:
        for i in range(n):
            self.send("Impression", video_id, position=i, surface="for_you")
            self.send("Watch", video_id, watch_ms=10_000 if complete else 2_000, video_duration_ms=10_000)
            if like:
                self.send("Like", video_id, action="LIKE")
        self.producer.flush()

    def expected(self, video_id: str) -> tuple[int, np.ndarray]:
        evaluator = FeatureEvaluator.of(FEATURES)
        state = evaluator.new_state()
        for row in self.rows:
            if evaluator.key(row) == video_id:
                evaluator.update(state, row)
        packed = evaluator.pack(state)
        return int.from_bytes(packed[:8], "little"), np.frombuffer(packed[16:], "<f4")


def redis_value(redis_client, video_id: str) -> tuple[int, np.ndarray] | None:
    value = redis_client.get(FEATURES.key_prefix + video_id)
    return None if value is None else (int.from_bytes(value[:8], "little"), np.frombuffer(value[16:], "<f4"))


def matches(redis_client, sent: SentEvents, video_id: str) -> bool:
    got, want = redis_value(redis_client, video_id), sent.expected(video_id)
    return got is not None and got[0] == want[0] and np.allclose(got[1], want[1], rtol=1e-6, equal_nan=True)


def checkpoint(settings, job_id: str) -> str:
    """Trigger a checkpoint (periodic ones are off in this test), wait for it, return its external path."""
    rest = settings.flink_rest_url
    trigger = httpx.post(f"{rest}/jobs/{job_id}/checkpoints", json={"checkpointType": "FULL"}, timeout=10)
    trigger.raise_for_status()
    request_id = trigger.json()["request-id"]

    def done():
        status = httpx.get(f"{rest}/jobs/{job_id}/checkpoints/{request_id}", timeout=10).json()
        return status if status["status"]["id"] == "COMPLETED" else None

    result = eventually(done, timeout_s=60, message="the triggered checkpoint")
    assert "failure-cause" not in result["operation"], result
    checkpoint_id = result["operation"]["checkpointId"]
    details = httpx.get(f"{rest}/jobs/{job_id}/checkpoints/details/{checkpoint_id}", timeout=10).json()
    return details["external_path"]


def submit(settings, run: str, start: dict[int, int], from_savepoint: str | None = None) -> str:
    return submit_job(settings, "engagement_features", from_savepoint=from_savepoint,
                      properties={"execution.checkpointing.interval": "1h"},  # only the checkpoint we trigger
                      job_args=["--only-feature-sets", FEATURES.name, "--group-id", f"fyp-restart-it-{run}",
                                "--start-offsets", ",".join(f"{p}:{o}" for p, o in start.items())])


def wait_running(settings, job_id: str) -> None:
    def running():
        job = httpx.get(f"{settings.flink_rest_url}/jobs/{job_id}", timeout=10).json()
        return job["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in job["vertices"])

    eventually(running, timeout_s=60, message=f"job {job_id} running")


def test_restart_from_checkpoint_does_not_double_count(settings, redis_client, engagement_producer):
    run = uuid.uuid4().hex[:8]
    x, y = f"v-restart-x-{run}", f"v-restart-y-{run}"
    sent = SentEvents(engagement_producer)
    start = end_offsets(settings, ENGAGEMENT)  # both runs read only this test's events
    job_ids = [submit(settings, run, start)]
    try:
        sent.views(x, 3, complete=True, like=True)  # A
        eventually(lambda: matches(redis_client, sent, x), timeout_s=60, message="A in Redis")
        wait_running(settings, job_ids[0])
        path = checkpoint(settings, job_ids[0])

        sent.views(x, 2, complete=False, like=False)  # B1: processed, not in the checkpoint
        sent.views(y, 2, complete=True, like=False)
        eventually(lambda: matches(redis_client, sent, x) and matches(redis_client, sent, y), timeout_s=60,
                   message="B1 in Redis before the restart")
        cancel_job(settings, job_ids[0])

        job_ids.append(submit(settings, run, start, from_savepoint=path))  # replays B1 onto A's state
        sent.views(x, 1, complete=True, like=True)  # B2
        sent.views(y, 1, complete=False, like=True)
        eventually(lambda: matches(redis_client, sent, x) and matches(redis_client, sent, y), timeout_s=90,
                   message="Redis equal to the recomputation of A + B1 + B2 after the restart")
        restored = httpx.get(f"{settings.flink_rest_url}/jobs/{job_ids[1]}/checkpoints", timeout=10).json()
        assert restored["latest"]["restored"]["external_path"] == path, restored["latest"]
        plays_24h = FEATURES.columns().index("plays_24h")
        assert redis_value(redis_client, x)[1][plays_24h] == 6  # 3 + 2 + 1, B1 once
    finally:
        for job_id in job_ids:
            with contextlib.suppress(httpx.HTTPError):
                cancel_job(settings, job_id)
