"""Redis restarts empty: `fyp features-restore` rewrites every live key from the Iceberg history, with the values
and event times the features job had written (real Redis, Kafka, Flink and Iceberg; runs late in the suite because
it wipes the test stack's Redis)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from features.engagement import user_engagement, video_engagement
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.stack.redis_server import RedisService
from tests.integration.conftest import eventually
from tests.integration.test_hostile_events import _history_ids

pytestmark = pytest.mark.integration

SETS = (video_engagement.v1, user_engagement.v1)


def test_an_empty_redis_is_refilled_with_the_values_the_job_wrote(settings, running_job, engagement_producer):
    running_job(ENGAGEMENT_FEATURES_JOB)
    running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    tag = uuid.uuid4().hex[:8]
    videos, users = [f"{tag}-v{i}" for i in range(3)], [f"{tag}-u{i}" for i in range(4)]
    sent = set()
    for i, user in enumerate(users):
        for j, video in enumerate(videos):
            sent.add(engagement_producer.send("Impression", user_id=user, video_id=video, position=j,
                                              surface="for_you"))
            if (i + j) % 2 == 0:
                sent.add(engagement_producer.send("Watch", user_id=user, video_id=video, watch_ms=2_000 * (i + 1),
                                                  video_duration_ms=10_000))
            if (i + j) % 3 == 0:
                sent.add(engagement_producer.send("Like", user_id=user, video_id=video, action="LIKE"))
    engagement_producer.flush()
    keys = [fs.key_prefix + v for fs in SETS for v in (videos if fs is video_engagement.v1 else users)]
    client = settings.redis_client()
    eventually(lambda: _history_ids(settings, sent) == sent, timeout_s=120, message="the events in the history")
    # The job's values, once it has written every event: all present, and unchanged 2 s later.
    def settled() -> list[bytes] | None:
        first = client.mget(keys)
        time.sleep(2)
        return first if all(first) and client.mget(keys) == first else None

    written = eventually(settled, timeout_s=60, message="every key written by the job, settled")

    service = RedisService(settings)
    service.stop()
    (service.home / "dump.rdb").unlink(missing_ok=True)  # an empty restart: no snapshot to load
    service.start()
    assert client.dbsize() == 0

    result = subprocess.run([sys.executable, "-m", "fyp.cli", "features-restore", "--set", "video_engagement",
                             "--set", "user_engagement", "--json"], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    report = {r["feature_set"]: r for r in json.loads(result.stdout)["results"]}
    assert set(report) == {fs.qualified_name for fs in SETS}
    assert all(r["written"] >= 3 for r in report.values())

    restored = client.mget(keys)
    # Event time and every column as the job wrote them; only the update time (bytes 8..16) differs.
    assert [v[:8] + v[16:] if v else None for v in restored] == [v[:8] + v[16:] for v in written]
    assert all(0 < client.pttl(k) <= fs.ttl.total_seconds() * 1000 for fs in SETS for k in keys
               if k.startswith(fs.key_prefix))
