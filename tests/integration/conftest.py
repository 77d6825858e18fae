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
from fyp.stack.process import StackError
from fyp.stack.services import all_services
from fyp.stack.submit import cancel_job, ensure_job
from schemas.registry import default_registry
from schemas.topics import ENGAGEMENT

# The stack's scheduled lake maintenance (`fyp up` starts it) tends only the history table here: the scratch tables
# that tests create count their own files and snapshots, and test_lake_maintenance_schedule runs a worker of its own.
os.environ.setdefault("FYP_LAKE_MAINTENANCE_TABLES", "history.engagement_events")


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
            # test_zz_stack_down may have stopped the cluster already, and with it every job; after
            # test_zz_resume_after_stack_restart the cluster no longer knows the jobs submitted before it.
            with contextlib.suppress(httpx.HTTPError, StackError):
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


def video_plays(client, video: str) -> float | None:
    """`video`'s plays_1h as serving reads it (a `fyp.serving.FeatureClient`), None before the job has written it."""
    features = client.get("video", video)
    return features.values["plays_1h"] if features else None


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


@pytest.fixture
def index_name(settings: Settings) -> Iterator[str]:
    """A fresh index name; its snapshots are deleted afterwards."""
    from connectors.s3_objects import S3ObjectStore
    from fyp.index.snapshot import SnapshotStore
    from fyp.media.publish import make_s3_client

    name = f"it-{uuid.uuid4().hex[:10]}"
    yield name
    snapshots = SnapshotStore(S3ObjectStore(make_s3_client(settings), settings.media_bucket), name)
    for prefix in snapshots.snapshots():
        snapshots.store.delete(list(snapshots.store.list_keys(prefix)))
    snapshots.store.delete([f"index-snapshots/{name}/_latest"])


@contextlib.contextmanager
def uploads_and_index(settings: Settings, running_job, log_dir, name_prefix: str) -> Iterator[dict]:
    """The upload orchestration and video embedding jobs, the upload workers and API, and an index service of its
    own (a fresh index name `name_prefix-...`): what the upload-to-index tests share. Yields api, workers, index
    (a TestClient) and store (the Redis video store)."""
    from fastapi.testclient import TestClient

    from connectors.redis_video_store import RedisVideoStore
    from fyp.index.config import ServiceConfig
    from fyp.index.service import build_app
    from fyp.pipelines import UPLOAD_ORCHESTRATION_JOB, VIDEO_EMBEDDINGS_JOB
    from fyp.stack.upload_workers import UploadWorkers

    # Checkpoints every 2 s, as test_upload_pipeline asks: whichever test submits the job first sets its interval
    # for the session (`running_job` reuses a running job), and that test waits 30 s for Iceberg commits, which
    # land on checkpoints (the default interval is 60 s).
    running_job(UPLOAD_ORCHESTRATION_JOB, **{"execution.checkpointing.interval": "2s"})
    running_job(VIDEO_EMBEDDINGS_JOB)
    workers = UploadWorkers(log_dir)
    config = ServiceConfig(name=f"{name_prefix}-{uuid.uuid4().hex[:8]}", replica_id=uuid.uuid4().hex[:8],
                           snapshot_every_s=0)
    try:
        workers.start_workers()
        api = workers.start_api(timeout_s=30)
        with TestClient(build_app(settings, config)) as index:
            eventually(lambda: index.get("/healthz").status_code == 200, timeout_s=60, message="index ready")
            yield {"api": api, "workers": workers, "index": index, "store": RedisVideoStore.from_settings(settings)}
    finally:
        workers.stop()


@pytest.fixture(scope="module")
def lake(settings: Settings):
    """The Iceberg REST catalog (pyiceberg), with the declared tables ensured."""
    from connectors.iceberg_tables import catalog, ensure_tables

    ensure_tables(settings)  # idempotent; `fyp up` may have lost the race with the table bucket's creation
    return catalog(settings)


@pytest.fixture
def scratch(lake):
    """An empty table with the history table's schema, partitioning and sort order, dropped afterwards."""
    from schemas.tables import ENGAGEMENT_HISTORY

    history = lake.load_table(ENGAGEMENT_HISTORY)
    name = f"history.lake_it_{uuid.uuid4().hex[:8]}"
    yield lake.create_table(name, schema=history.schema(), partition_spec=history.spec(),
                            sort_order=history.sort_order(), properties={"format-version": "2"})
    with contextlib.suppress(Exception):
        lake.purge_table(name)
