"""Changing a feature set, end to end (docs/ADDING_FEATURES.md, "Change a set"): v2 published beside v1 under its
own prefix, filled from the Iceberg history, read through the serving client, and v1 retired with
`fyp features-retire` (real Kafka, Flink, Iceberg and Redis).

The test's set is a copy of video_engagement under a name of its own, so that retiring its v1 deletes no key
another test reads; the restore fills both of its versions, standing in for a job that computes them. The live
job's video_engagement.v1 is the yardstick: the filled v2 must hold the job's values in every column they share.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from connectors.iceberg_tables import catalog
from features.engagement import video_engagement
from featurespec.versions import read_sets, retire_refusal
from fyp.lake.restore import restore_feature_set
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.serving import FeatureClient
from schemas.tables import ENGAGEMENT_HISTORY
from tests.integration.conftest import eventually
from tests.integration.test_hostile_events import _history_ids

pytestmark = pytest.mark.integration


def test_v2_is_filled_read_and_v1_retired(settings, running_job, engagement_producer):
    running_job(ENGAGEMENT_FEATURES_JOB)
    running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    tag = uuid.uuid4().hex[:8]
    name = f"versions_probe_{tag}"
    v1 = replace(video_engagement.v1, name=name)
    # The change: a 7-day window added (and the ttl raised to cover it, as the declaration requires).
    v2 = replace(v1, version=2, windows=(*v1.windows, timedelta(days=7)), ttl=timedelta(days=8))
    videos = [f"{tag}-v{i}" for i in range(3)]
    sent, plays = set(), dict.fromkeys(videos, 0)
    for i, video in enumerate(videos):
        for j in range(i + 1):
            sent.add(engagement_producer.send("Watch", user_id=f"{tag}-u{j}", video_id=video, watch_ms=4_000,
                                              video_duration_ms=10_000))
            plays[video] += 1
        sent.add(engagement_producer.send("Impression", user_id=f"{tag}-u0", video_id=video, position=i,
                                          surface="for_you"))
    engagement_producer.flush()
    client = settings.redis_client()
    eventually(lambda: _history_ids(settings, sent) == sent, timeout_s=120, message="the events in the history")
    job = FeatureClient(client, (video_engagement.v1,))
    eventually(lambda: all((f := job.get("video", v)) and f.values["plays_24h"] == plays[v] for v in videos),
               timeout_s=60, message="every play in the job's video_engagement.v1")

    # Fill both versions from the history (v2: what `fyp features-restore --set NAME.v2` runs). The history
    # holds other tests' videos too: every live one gets a key, ours among them.
    table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
    now_ms = int(time.time() * 1000)
    written = {fs.version: restore_feature_set(fs, table, client, now_ms=now_ms).written for fs in (v1, v2)}
    assert written[1] == written[2] >= len(videos)
    v1_keys, v2_keys = [v1.key_prefix + v for v in videos], [v2.key_prefix + v for v in videos]
    assert all(client.mget(v1_keys)) and all(client.mget(v2_keys))

    # Readers switch: the version they read is one value per set.
    reader = FeatureClient(client, read_sets((v1, v2), {name: 2}))
    read_at = now_ms + 1_000
    for video in videos:
        new = reader.get("video", video, now_ms=read_at)
        assert new is not None
        assert new.values["plays_168h"] == new.values["plays_24h"] == plays[video]
        assert new.values["impressions_168h"] == 1
        old = job.get("video", video, now_ms=read_at)
        assert {c: new.values[c] for c in old.values} == pytest.approx(old.values, nan_ok=True)

    # Retire v1: refused while the job computes or readers read it; then its keys go, v2's stay.
    assert "still computed" in retire_refusal(name, 1, computed=(v1, v2), read_versions={name: 2})
    assert "readers read" in retire_refusal(name, 1, computed=(v2,), read_versions={name: 1})

    def retire(*flags: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "fyp.cli", "features-retire", name, "--version", "1", "--json",
                               *flags], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    count = written[1]
    assert retire("--dry-run") == {"prefix": v1.key_prefix, "matched": count, "deleted": 0, "dry_run": True}
    assert client.exists(*v1_keys) == len(videos)
    assert retire() == {"prefix": v1.key_prefix, "matched": count, "deleted": count, "dry_run": False}
    assert client.exists(*v1_keys) == 0
    assert client.exists(*v2_keys) == len(videos)
    refused = subprocess.run([sys.executable, "-m", "fyp.cli", "features-retire", "video_engagement", "--version",
                              "1"], capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1
    assert "video_engagement.v1 is still computed" in refused.stderr
    assert client.exists(*(video_engagement.v1.key_prefix + v for v in videos)) == len(videos)
