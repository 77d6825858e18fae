"""The standing adversarial suite against the running features and history jobs (real Kafka, Flink, Redis,
Iceberg): the hostile corpus of tests/hostile_corpus.py, a client whose clock runs ahead, headers, and a replay.

After it: neither job has failed over, every bad record is a dead letter with its reason and original key, and
every good record is in Iceberg (and, for plays, counted in Redis).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from connectors.iceberg_tables import catalog
from features import ALLOWED_LATENESS
from fyp.deadletters import REPLAY_HEADER, read_dead_letters
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.serving import FeatureClient
from schemas.registry import default_registry
from schemas.tables import ENGAGEMENT_HISTORY
from schemas.topics import ENGAGEMENT
from tests.hostile_corpus import FILLERS, hostile_cases
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

AHEAD_MS = 150_000
LATENESS_MS = int(ALLOWED_LATENESS.total_seconds() * 1000)

FYP = [sys.executable, "-m", "fyp.cli"]


def _failovers(settings, job_id: str) -> int:
    """Entries in the job's exception history: one per failure that made it restart."""
    response = httpx.get(f"{settings.flink_rest_url}/jobs/{job_id}/exceptions", timeout=10)
    response.raise_for_status()
    return len(response.json()["exceptionHistory"]["entries"])


def _letters_by_key(settings, prefix: bytes) -> dict[bytes, list]:
    found: dict[bytes, list] = {}
    for letter in read_dead_letters(settings):
        if letter.key and letter.key.startswith(prefix):
            found.setdefault(letter.key, []).append(letter)
    return found


def _history_ids(settings, event_ids: set[str]) -> set[str]:
    from pyiceberg.expressions import In

    table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
    rows = table.scan(row_filter=In("event_id", event_ids), selected_fields=("event_id",)).to_arrow()
    return set(rows.column("event_id").to_pylist())


@pytest.fixture(scope="module")
def jobs(running_job):
    features = running_job(ENGAGEMENT_FEATURES_JOB)
    history = running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    return features, history


def test_the_hostile_corpus_is_dead_lettered_by_reason_and_the_rest_lands(settings, jobs, engagement_producer):
    failovers = {job: _failovers(settings, job) for job in jobs}
    tag = uuid.uuid4().hex[:8]
    cases = hostile_cases(tag)
    sent = []  # (case, user id, event id)
    for i, case in enumerate(cases):
        fields = {**FILLERS[case.record_name], **case.fields}
        user_id = fields.pop("user_id", f"{tag}-u{i}")
        video_id = fields.pop("video_id", f"{tag}-v{i}")
        event_id = engagement_producer.send(case.record_name, user_id=user_id, video_id=video_id, **fields)
        sent.append((case, user_id, event_id, video_id))
    engagement_producer.send_raw(b"not avro", key=f"{tag}-raw".encode(), headers=[("trace-id", b"t-42")])
    engagement_producer.flush()

    bad = {user.encode(): case for case, user, _, _ in sent if case.reason}
    good = [(case, event_id, video) for case, _, event_id, video in sent if not case.reason]
    assert len(bad) >= 30 and len(good) >= 15, "the corpus covers both sides"

    letters = eventually(lambda: len(found := _letters_by_key(settings, tag.encode())) > len(bad) and found,
                         timeout_s=90, message="every hostile record dead-lettered")
    reasons = {key: [x.reason for x in found] for key, found in letters.items()}
    assert {key: reasons.get(key) for key in bad} == {key: [case.reason] for key, case in bad.items()}
    raw = letters[f"{tag}-raw".encode()]
    assert [x.reason for x in raw] == ["undecodable:bad_marker"]
    assert ("trace-id", b"t-42") in raw[0].headers and raw[0].payload == b"not avro"

    # Every good record reaches the history, and plays are counted in Redis.
    expected = {event_id for _, event_id, _ in good}
    eventually(lambda: _history_ids(settings, expected) == expected, timeout_s=120,
               message="the good records in the Iceberg history")
    client = FeatureClient.from_settings(settings)
    watched = [video for case, _, video in good if case.record_name == "Watch"]

    def plays() -> dict[str, float | None]:
        return {video: (f := client.get("video", video)) and f.values["plays_1m"] for video in watched}

    eventually(lambda: plays() == dict.fromkeys(watched, 1), timeout_s=60, message="one play per good watch")

    assert {job: _failovers(settings, job) for job in jobs} == failovers, "a job failed over"


def test_an_event_as_large_as_the_topic_takes_is_dead_lettered_without_a_failover(settings, jobs):
    """Its dead letter is larger than the event: with the default 1 MiB on the DLQ topic and producer, the job
    failed over on it and met it again after each restart."""
    from confluent_kafka import Producer

    failovers = {job: _failovers(settings, job) for job in jobs}
    user = f"{uuid.uuid4().hex[:8]}-huge"
    record = {"event_id": str(uuid.uuid4()), "event_time": int(time.time() * 1000), "user_id": user,
              "video_id": "v-huge", "author_id": "a", "sound_id": None, "region": "US", "language": "en",
              "session_id": "s", "hashtags": [], "comment_id": "c", "text": "x" * 1_048_300}
    payload = default_registry().encode("Comment", record)
    producer = Producer({**settings.kafka_producer_config(), "message.max.bytes": 2_000_000})
    producer.produce(ENGAGEMENT.name, key=user.encode(), value=payload)
    assert producer.flush(30) == 0
    letters = eventually(lambda: _letters_by_key(settings, user.encode()).get(user.encode()), timeout_s=90,
                         message="the dead letter of the 1 MiB comment")
    assert [x.reason for x in letters] == ["too_long:comment_text"] and letters[0].payload == payload
    assert {job: _failovers(settings, job) for job in jobs} == failovers, "a job failed over"


def test_a_client_clock_ahead_does_not_drop_other_clients_events(settings, jobs, engagement_producer):
    tag = uuid.uuid4().hex[:8]
    now = int(time.time() * 1000)
    # One client 150 s ahead (inside the tolerated five minutes, and more than the 2-minute allowed lateness ahead
    # of the others), then other clients on time, on one partition (so the job reads them in this order).
    engagement_producer.send("Watch", user_id=f"{tag}-ahead", video_id=f"{tag}-ahead", event_time=now + AHEAD_MS,
                             partition=0, watch_ms=1_000, video_duration_ms=10_000)
    video = f"{tag}-on-time"
    for i in range(5):
        engagement_producer.send("Watch", user_id=f"{tag}-u{i}", video_id=video, event_time=int(time.time() * 1000),
                                 partition=0, watch_ms=1_000, video_duration_ms=10_000)
    engagement_producer.flush()
    client = FeatureClient.from_settings(settings)
    eventually(lambda: (f := client.get("video", video)) and f.values["plays_1m"] == 5, timeout_s=90,
               message="all five on-time plays counted")
    # `fyp verify` replays lateness without the job's wall-clock cap (docs/ANALYSTS.md, "Limits of the replay"):
    # until the wall clock passes the ahead event's time minus the allowed lateness, it would count partition 0's
    # on-time rows as late, and a later test verifying an entity of partition 0 would find a mismatch with no
    # cause (test_lake_verify did, in about 2 of 5 full runs, when it had 4 minutes ahead here). Wait that out.
    time.sleep(max(0.0, (now + AHEAD_MS - LATENESS_MS - time.time() * 1000) / 1000 + 1))


def test_dlq_inspect_and_replay_keep_keys_and_headers(settings, jobs, engagement_producer):
    tag = uuid.uuid4().hex[:8]
    user = f"{tag}-loops"
    engagement_producer.send("Loop", user_id=user, video_id=f"{tag}-v", loop_count=0, video_duration_ms=10_000)
    engagement_producer.flush()
    eventually(lambda: user.encode() in _letters_by_key(settings, tag.encode()), timeout_s=90,
               message="the dead letter")

    inspect = _fyp("dlq", "inspect", "--reason", "out_of_range", "--since", "10m", "--json")
    assert inspect["by_reason"].get("out_of_range:loop_count", 0) >= 1

    replayed = _fyp("dlq", "replay", "--reason", "out_of_range:loop_count", "--since", "10m", "--json")
    assert replayed["replayed"] == replayed["originals"] >= 1  # a record dead-lettered twice is sent once
    # Still bad, so it comes back: the same key, and the replay header the job carried through.
    again = eventually(lambda: len(found := _letters_by_key(settings, tag.encode()).get(user.encode(), [])) >= 2
                       and found, timeout_s=90, message="the replayed record dead-lettered again")
    assert {x.reason for x in again} == {"out_of_range:loop_count"}
    assert any(name == REPLAY_HEADER for name, _ in again[-1].headers)
    original = default_registry().decode(again[-1].payload).record
    assert original["user_id"] == user and again[-1].partition == again[0].partition


def _fyp(*args: str) -> dict:
    result = subprocess.run([*FYP, *args], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"fyp {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)
