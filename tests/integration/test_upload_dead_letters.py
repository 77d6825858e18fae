"""Malformed records on the uploads topic become dead letters on fyp.uploads.dlq.v1, on the real stack.

The transcoder and moderator workers run as subprocesses (fyp/stack/upload_workers.py, as `fyp worker ...`), in
their usual consumer groups; the test writes bad records to fyp.uploads.v1 with a real producer and reads the
dead-letter topic back with `fyp.deadletters` and `fyp dlq inspect --topic`:
- a record neither worker can decode: one dead letter from each worker (each consumer group gives up on it),
  with the reason, the original key, headers, payload, partition and offset;
- a TranscodeRequested whose video_id holds ':' : the transcoder's dead letter only (`bad_id:video_id`);
- a TranscodeCompleted whose author_id holds a control character: the moderator's only (`bad_id:author_id`);
- a TranscodeCompleted the moderator cannot handle (no renditions; objects that are not in S3): its dead letter
  names the failure (`malformed:IndexError`, `missing_object`);
- an unreadable record as large as the broker takes (~1 MiB): its dead letters fit the DLQ (2 MiB records), so
  the workers do not stall on it;
- replaying the first record sends it once, though two dead letters name it, and it comes back as two new ones.
- `fyp up` on the running broker recreates the DLQ topic, with its size limit, when it is missing.

No Flink job is needed: the orchestration job does not read dead letters (docs/UPLOADS.md, "Dead letters").
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from fyp.cli import app as fyp_app
from fyp.config import Settings
from fyp.deadletters import REPLAY_HEADER, DeadLetter, read_dead_letters, replay
from fyp.stack.upload_workers import UploadWorkers
from schemas.registry import default_registry
from schemas.topics import UPLOADS, UPLOADS_DLQ
from tests.integration.conftest import eventually
from udfs.dead_letter import dead_letter_payload

pytestmark = pytest.mark.integration

WORKERS = {"fyp-transcoder", "fyp-moderator"}
DEAD_LETTER_TIMEOUT_S = 180  # the moderator loads its models before it polls; minutes on a loaded machine
BROKER_RECORD_LIMIT = 1_048_588  # Kafka's default message.max.bytes (a record batch), kept by fyp.uploads.v1
BATCH_OVERHEAD = 61  # a record batch's header
# With its key, header and the record's own framing (~60 bytes), just under the broker's limit: so the dead letter,
# ~150 bytes more, is over it, and only fits because the uploads DLQ takes 2 MiB records.
LARGE_BYTES = 1_048_400


@pytest.fixture(scope="module")
def workers(settings: Settings, tmp_path_factory) -> Iterator[UploadWorkers]:
    started = UploadWorkers(tmp_path_factory.mktemp("upload-dlq-logs"))
    try:
        started.start_workers()
        yield started
    finally:
        started.stop()


class Sent:
    """Records written to the uploads topic, with the partition and offset the broker gave each."""

    def __init__(self, settings: Settings) -> None:
        # Room for a record at the broker's limit (librdkafka's own default request limit is 1,000,000 bytes).
        self.producer = Producer({**settings.kafka_producer_config(), "message.max.bytes": 2 * 1024 * 1024})
        self.where: dict[bytes, tuple[int, int]] = {}

    def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
        def delivered(error, message) -> None:
            assert error is None, f"{key!r} not delivered: {error}"
            self.where[key] = (message.partition(), message.offset())

        self.producer.produce(UPLOADS.name, key=key, value=value, headers=headers, on_delivery=delivered)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0, "Kafka did not acknowledge every record"


def _letters(settings: Settings, keys: set[bytes]) -> dict[bytes, list[DeadLetter]]:
    found: dict[bytes, list[DeadLetter]] = {}
    for letter in read_dead_letters(settings, topic=UPLOADS_DLQ.name):
        if letter.key in keys:
            found.setdefault(letter.key, []).append(letter)
    return found


def _wait(settings: Settings, workers: UploadWorkers, expected: dict[bytes, int]) -> dict[bytes, list[DeadLetter]]:
    """The dead letters of each key once there are at least `expected[key]` (fails after the timeout, with the
    workers' logs)."""
    def enough() -> dict[bytes, list[DeadLetter]] | None:
        workers.check_alive()
        found = _letters(settings, set(expected))
        return found if all(len(found.get(k, [])) >= n for k, n in expected.items()) else None

    deadline = time.monotonic() + DEAD_LETTER_TIMEOUT_S
    while time.monotonic() < deadline:
        if found := enough():
            return found
        time.sleep(1)
    pytest.fail(f"dead letters not all there within {DEAD_LETTER_TIMEOUT_S} s: "
                f"{ {k: len(v) for k, v in _letters(settings, set(expected)).items()} } of {expected}\n"
                f"transcoder:\n{workers.tail('transcoder')}\nmoderator:\n{workers.tail('moderator')}")


def _request(video_id: str) -> bytes:
    return default_registry().encode("TranscodeRequested", {
        "event_id": str(uuid.uuid4()), "event_time": int(time.time() * 1000), "video_id": video_id,
        "author_id": "it_author", "attempt": 1, "source_key": "uploads/2026/11/24/" + "0" * 32, "stage": "playable"})


def _completed(video_id: str, author_id: str, *, renditions: bool = True) -> bytes:
    """A TranscodeCompleted naming objects that do not exist (none was published for this video)."""
    root = f"videos/{video_id}/v1/run/"
    rendition = {"codec": "h264", "width": 320, "height": 240, "bitrate_kbps": 400,
                 "playlist_key": root + "stream/media_0.m3u8"}
    return default_registry().encode("TranscodeCompleted", {
        "event_id": str(uuid.uuid4()), "event_time": int(time.time() * 1000), "video_id": video_id,
        "author_id": author_id, "renditions": [rendition] if renditions else [],
        "hls_master_key": root + "stream/master.m3u8", "dash_manifest_key": root + "stream/manifest.mpd",
        "cover_key": root + "cover.jpg", "audio_key": None, "audio_fingerprint": None, "duration_ms": 1_000,
        "elapsed_ms": 1, "stage": "playable", "attempt": 1, "cpu_ms": None})


@pytest.fixture(scope="module")
def parked(settings: Settings, workers: UploadWorkers) -> dict[str, Any]:
    """Sends the malformed records once and waits for their dead letters: {keys, payloads, where, found}."""
    tag = uuid.uuid4().hex[:12]
    names = ("garbage", "request", "completed", "no_renditions", "missing", "large")
    keys = {name: f"it-dlq-{tag}-{name}".encode() for name in names}
    keys["request"] = f"it-dlq:{tag}".encode()
    payloads = {
        "garbage": b"not an avro record " + tag.encode(),
        "request": _request(keys["request"].decode()),  # the key is the video_id, ':' and all
        "completed": _completed(keys["completed"].decode(), "it\x07author"),
        "no_renditions": _completed(keys["no_renditions"].decode(), "it_author", renditions=False),
        "missing": _completed(keys["missing"].decode(), "it_author"),
        "large": b"\x00" + os.urandom(LARGE_BYTES - 1),
    }
    sent = Sent(settings)
    for name in names:
        sent.send(keys[name], payloads[name], headers=[("trace", f"it-{name}".encode())])
    sent.flush()
    found = _wait(settings, workers, {keys["garbage"]: 2, keys["request"]: 1, keys["completed"]: 1,
                                      keys["no_renditions"]: 1, keys["missing"]: 1, keys["large"]: 2})
    return {"keys": keys, "payloads": payloads, "where": sent.where, "found": found}


def test_an_undecodable_record_is_parked_by_each_worker_with_its_key_and_headers(parked) -> None:
    key = parked["keys"]["garbage"]
    letters = parked["found"][key]
    assert {x.consumer for x in letters} == WORKERS and len(letters) == 2
    for letter in letters:
        assert letter.reason == "undecodable:bad_marker"
        assert (letter.topic, (letter.partition, letter.offset)) == (UPLOADS.name, parked["where"][key])
        assert letter.payload == parked["payloads"]["garbage"]
        assert ("trace", b"it-garbage") in letter.headers


def test_a_request_with_a_key_breaking_id_is_the_transcoders_dead_letter(parked) -> None:
    (letter,) = parked["found"][parked["keys"]["request"]]
    assert (letter.reason, letter.consumer) == ("bad_id:video_id", "fyp-transcoder")
    assert letter.payload == parked["payloads"]["request"] and ("trace", b"it-request") in letter.headers


def test_a_transcode_result_with_a_control_character_is_the_moderators_dead_letter(parked) -> None:
    (letter,) = parked["found"][parked["keys"]["completed"]]
    assert (letter.reason, letter.consumer) == ("bad_id:author_id", "fyp-moderator")
    assert default_registry().decode(letter.payload).record["author_id"] == "it\x07author"


def test_a_result_the_moderator_cannot_handle_is_its_dead_letter_with_the_failure(parked) -> None:
    (empty,) = parked["found"][parked["keys"]["no_renditions"]]
    assert (empty.reason, empty.consumer) == ("malformed:IndexError", "fyp-moderator")
    (missing,) = parked["found"][parked["keys"]["missing"]]
    assert (missing.reason, missing.consumer) == ("missing_object", "fyp-moderator")
    assert missing.payload == parked["payloads"]["missing"] and ("trace", b"it-missing") in missing.headers


def test_a_record_as_large_as_the_broker_takes_fits_the_dead_letter_topic(parked) -> None:
    letters = parked["found"][parked["keys"]["large"]]
    # At the limit: the dead letter's record batch would be refused by a topic with the broker's default limit.
    letter = letters[0]
    value = dead_letter_payload(letter.topic, letter.partition, letter.offset, letter.reason, letter.payload,
                                key=letter.key)
    headers = sum(len(name) + len(v or b"") for name, v in letter.headers)
    assert BATCH_OVERHEAD + len(letter.key) + len(value) + headers > BROKER_RECORD_LIMIT
    assert {x.consumer for x in letters} == WORKERS
    assert all(x.reason == "undecodable:bad_marker" and x.payload == parked["payloads"]["large"] for x in letters)


def test_dlq_inspect_reads_the_uploads_topic(parked) -> None:
    result = CliRunner().invoke(fyp_app, ["dlq", "inspect", "--topic", UPLOADS_DLQ.name, "--since", "30m",
                                          "--samples", "1000", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    keys = {s["key"]: s for samples in summary["samples"].values() for s in samples}
    sample = keys[parked["keys"]["request"].decode()]
    assert (sample["reason"], sample["consumer"], sample["topic"]) == ("bad_id:video_id", "fyp-transcoder",
                                                                      UPLOADS.name)
    refused = CliRunner().invoke(fyp_app, ["dlq", "inspect", "--topic", UPLOADS.name])
    assert refused.exit_code != 0 and "not a dead-letter topic" in refused.output


def test_replay_sends_a_record_parked_twice_once(settings: Settings, workers: UploadWorkers, parked) -> None:
    key = parked["keys"]["garbage"]
    assert replay(settings, parked["found"][key]) == 1
    # Still garbage: both workers park the replayed copy again, naming the dead letter it was replayed from.
    found = _wait(settings, workers, {key: 4})[key]
    again = [x for x in found if any(name == REPLAY_HEADER for name, _ in x.headers)]
    assert len(again) == 2 and {x.consumer for x in again} == WORKERS
    assert len({x.offset for x in again}) == 1 and again[0].offset != parked["where"][key][1]
    assert all(("trace", b"it-garbage") in x.headers and x.payload == parked["payloads"]["garbage"] for x in again)


def test_fyp_up_creates_a_missing_topic_on_a_running_broker(settings: Settings, parked) -> None:
    """A broker started before the uploads DLQ existed gets it from `fyp up` (KafkaService.start), with its size
    limit. Runs last: it drops the topic and lets the start recreate it."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    from fyp.stack.kafka_broker import KafkaService

    admin = AdminClient(settings.kafka_client_config())
    admin.delete_topics([UPLOADS_DLQ.name])[UPLOADS_DLQ.name].result(30)
    deadline = time.monotonic() + 30
    while UPLOADS_DLQ.name in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.5)
    service = KafkaService(settings)
    assert service.pid() is not None, "the broker should be running"
    service.start()
    # The broker learns of a new topic from the KRaft controller a moment after CreateTopics returns.
    eventually(lambda: UPLOADS_DLQ.name in admin.list_topics(timeout=10).topics, timeout_s=30,
               message="the recreated uploads DLQ in the broker's metadata")
    resource = ConfigResource(ConfigResource.Type.TOPIC, UPLOADS_DLQ.name)
    config = admin.describe_configs([resource])[resource].result(30)
    assert config["max.message.bytes"].value == str(UPLOADS_DLQ.max_message_bytes)
