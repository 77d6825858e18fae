"""`fyp verify features` after a small run through the real features and history jobs.

Events of one fresh user go through Kafka to both jobs; one is sent twice (the job counts it once) and one is
late (the job drops it, the history keeps it). Verification must find every entity of every verifiable
feature set consistent, attribute the late row to `lateness`, and flag a Redis value changed behind the job's
back as a mismatch.
"""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from connectors.iceberg_tables import catalog, ensure_tables
from features import ALL_FEATURE_SETS, feature_set_for_entity
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import SqlTranslationError
from fyp.commands import verify as verify_commands
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.serving.layout import HEADER_BYTES
from schemas.tables import ENGAGEMENT_HISTORY
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration


def fyp_verify(*args: str) -> tuple[int, dict]:
    app = typer.Typer()
    verify_commands.register(app)
    result = CliRunner().invoke(app, ["verify", "features", *args, "--json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def verifiable(feature_set) -> bool:
    try:
        FeatureEvaluator.of(feature_set)
    except SqlTranslationError:  # a derived column scored by a Python UDF inside the job
        return False
    return True


def test_recomputed_features_match_redis_and_explain_what_differs(settings, running_job, engagement_producer,
                                                                   redis_client):
    ensure_tables(settings)
    running_job(ENGAGEMENT_FEATURES_JOB)
    running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    tag = uuid.uuid4().hex[:8]
    user, author, sound, region, tags = f"u-ver-{tag}", f"a-ver-{tag}", f"s-ver-{tag}", f"R{tag}", [f"t{tag}"] * 2
    videos = [f"v-ver-{tag}-{i}" for i in range(3)]
    common = {"user_id": user, "author_id": author, "sound_id": sound, "region": region, "hashtags": tags}
    now = int(time.time() * 1000)
    sent = []
    for i, video in enumerate(videos):
        t = now - 3_000 + i * 500
        sent.append(engagement_producer.send("Impression", video_id=video, event_time=t, position=i,
                                             surface="for_you", **common))
        sent.append(engagement_producer.send("Watch", video_id=video, event_time=t + 100, watch_ms=9_700 - i,
                                             video_duration_ms=10_000, **common))
    sent.append(engagement_producer.send("Like", video_id=videos[0], event_time=now - 900, action="LIKE", **common))
    twice = str(uuid.uuid4())
    for _ in range(2):  # the same event delivered twice: the job counts it once, the history keeps both
        engagement_producer.send("Watch", video_id=videos[1], event_time=now - 800, watch_ms=5_000,
                                 video_duration_ms=10_000, event_id=twice, **common)
    engagement_producer.flush()
    late_time = now - 10 * 60_000  # 10 min behind the newest event of the same partition (key = user)
    late = engagement_producer.send("Watch", video_id=videos[2], event_time=late_time, watch_ms=3_000,
                                    video_duration_ms=10_000, **common)
    engagement_producer.flush()

    history = catalog(settings).load_table(ENGAGEMENT_HISTORY)

    def landed() -> int:
        history.refresh()
        rows = history.scan(row_filter=f"user_id == '{user}'", selected_fields=("event_id",)).to_arrow()
        return rows.num_rows

    eventually(lambda: landed() == len(sent) + 3, timeout_s=120, message="every event in the history")
    video_set = feature_set_for_entity("video")
    newest = now - 800
    eventually(lambda: (v := redis_client.get(video_set.key_prefix + videos[1])) and
               int.from_bytes(v[:8], "little", signed=True) == newest, timeout_s=60,
               message="the repeated watch in Redis")

    ids = {"video": videos, "user": [user], "author": [author], "sound": [sound],
           "user_author": [f"{user}:{author}"], "user_hashtag": [f"{user}:{tags[0]}"],
           "region_language": [f"{region}:en"]}
    checked = set()
    for feature_set in ALL_FEATURE_SETS:
        if not verifiable(feature_set) or feature_set is not feature_set_for_entity(feature_set.entity.name):
            continue
        entity = feature_set.entity.name
        code, report = fyp_verify("--entity", entity, *(a for i in ids[entity] for a in ("--id", i)))
        (result,) = report["results"]
        statuses = {e["entity_id"]: e for e in result["entities"]}
        odd = [{**e, "columns": [c for c in e["columns"] if not c["match"]]} for e in result["entities"]
               if e["status"] not in ("match", "explained")]
        assert code == 0 and report["ok"], json.dumps(
            {"summary": result["summary"]["by_status"], "odd": odd, "sent_at": now, "redis_now": time.time(),
             "history": _rows_of(history, user)}, indent=1, default=str)
        for entity_id, check in statuses.items():
            # Every entity the late watch belongs to must name lateness; no other cause may appear.
            late_one = entity_id != videos[0] and entity_id != videos[1]
            expected = {"explained"} if late_one else {"match"}
            assert check["status"] in expected, (feature_set.name, entity_id, check)
            if late_one:
                assert check["causes"] == ["lateness"], check
                assert all(c["match"] or c["explained_by"] == ["lateness"] for c in check["columns"])
            assert check["history_rows"] > 0 and check["mismatched"] == (
                0 if not late_one else sum(not c["match"] for c in check["columns"]))
        checked.add(entity)
    assert {"video", "user", "author", "sound", "user_author", "user_hashtag", "region_language"} <= checked
    assert late in set(history.scan(row_filter=f"user_id == '{user}'", selected_fields=("event_id",))
                       .to_arrow().column("event_id").to_pylist())

    # A value changed behind the job's back is a mismatch, sized, and the command fails.
    key = video_set.key_prefix + videos[1]
    original = redis_client.get(key)
    floats = np.frombuffer(original, dtype="<f4", offset=HEADER_BYTES).copy()
    column = video_set.columns().index("plays_24h")
    floats[column] += 3
    redis_client.set(key, original[:HEADER_BYTES] + floats.tobytes(), keepttl=True)
    try:
        code, report = fyp_verify("--entity", "video", "--id", videos[1])
    finally:
        redis_client.set(key, original, keepttl=True)
    (check,) = report["results"][0]["entities"]
    (bad,) = [c for c in check["columns"] if not c["match"]]
    assert code == 1 and check["status"] == "mismatch"
    assert bad["column"] == "plays_24h" and bad["abs_diff"] == 3.0 and bad["explained_by"] is None

    # Sampled mode over the recent history: the run's videos among them, all consistent.
    code, report = fyp_verify("--entity", "video", "--sample", "50", "--since", "3m")
    summary = report["results"][0]["summary"]
    assert code == 0 and summary["entities"] >= len(videos), summary
    assert set(summary["by_status"]) <= {"match", "explained"}, summary


def _rows_of(history, user: str) -> list[tuple]:
    """The user's history rows in Kafka order, to show what a failed verification saw."""
    history.refresh()
    rows = history.scan(row_filter=f"user_id == '{user}'", selected_fields=(
        "kafka_partition", "kafka_offset", "event_time", "event_type", "video_id", "event_id")).to_arrow().to_pylist()
    return sorted((r["kafka_partition"], r["kafka_offset"], str(r["event_time"]), r["event_type"], r["video_id"],
                   r["event_id"]) for r in rows)
