"""Integration tests run against the real local stack, started once per session in its own FYP_HOME.

scripts/test.sh exports FYP_HOME and FYP_PORT_OFFSET so the test stack never collides with a developer's.
The stack is stopped at the end unless FYP_KEEP_STACK=1 (handy when iterating on one test).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from confluent_kafka import Producer

from fyp.config import Settings, load_settings
from fyp.pipelines import Pipeline
from fyp.stack.services import all_services
from fyp.stack.submit import cancel_job, ensure_job
from schemas.registry import default_registry
from schemas.topics import ENGAGEMENT


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    settings = load_settings()
    services = all_services(settings)
    started = time.monotonic()
    for service in services:
        service.start()
    print(f"\nstack up in {time.monotonic() - started:.1f} s at {settings.home}")
    yield settings
    if os.environ.get("FYP_KEEP_STACK") != "1":
        for service in reversed(services):
            service.stop()


@pytest.fixture(scope="session")
def redis_client(settings: Settings) -> redis.Redis:
    return settings.redis_client()


@pytest.fixture(scope="session")
def running_job(settings: Settings):
    """Submit a job once per session (reusing a running one of the same pipeline name).

    Asked again, it answers the job now running under that name: test_rescale replaces a job with a new one."""
    submitted: dict[str, str] = {}

    def ensure(pipeline: Pipeline, **properties: str) -> str:
        submitted[pipeline.job] = ensure_job(settings, pipeline, properties=properties)
        return submitted[pipeline.job]

    yield ensure
    if os.environ.get("FYP_KEEP_STACK") != "1":
        for job_id in submitted.values():
            # test_zz_stack_down may have stopped the cluster already, and with it every job.
            with contextlib.suppress(httpx.HTTPError):
                cancel_job(settings, job_id)


class EngagementProducer:
    """Hand-made engagement events, so a test knows exactly what it sent."""

    def __init__(self, settings: Settings) -> None:
        self.producer = Producer(settings.kafka_producer_config())

    def send(self, record_name: str, *, user_id: str, video_id: str, event_time: int | None = None,
             partition: int | None = None, **fields) -> str:
        event_time = event_time or int(time.time() * 1000)
        record = {
            "event_id": str(uuid.uuid4()), "event_time": event_time, "user_id": user_id, "video_id": video_id,
            "author_id": fields.pop("author_id", "author-it"), "sound_id": fields.pop("sound_id", None),
            "region": "US", "language": "en", "session_id": "session-it", "hashtags": ["it"], **fields,
        }
        payload = default_registry().encode(record_name, record)
        where = {} if partition is None else {"partition": partition}
        self.producer.produce(ENGAGEMENT.name, key=user_id.encode(), value=payload, timestamp=event_time, **where)
        return record["event_id"]

    def send_raw(self, value: bytes, key: bytes = b"raw", headers: list[tuple[str, bytes]] | None = None) -> None:
        self.producer.produce(ENGAGEMENT.name, key=key, value=value, headers=headers)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0, "Kafka did not acknowledge every event"


@pytest.fixture
def engagement_producer(settings: Settings) -> EngagementProducer:
    return EngagementProducer(settings)


def eventually(check, *, timeout_s: float, interval_s: float = 0.5, message: str = ""):
    """Poll `check()` until it returns a truthy value; fail with `message` and the last value otherwise."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"{message or 'condition'} not met within {timeout_s:.0f} s (last value: {last!r})")
