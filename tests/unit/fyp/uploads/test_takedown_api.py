"""POST /v1/takedowns and `TakedownService` without S3, Kafka or Iceberg: the media store is in memory, the video
hashes a dict, emit and audit collect what they get. They show the request's validation, the order of the steps
and retry safety; tests/integration/test_takedown.py shows the same on the real stack."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from fastapi.testclient import TestClient

from fyp.media.takedown import quarantine_key
from fyp.uploads.api import create_app
from fyp.uploads.store import MemoryUploadStore
from fyp.uploads.takedowns import TakedownService, takedown_event_id
from schemas.registry import default_registry
from tests.unit.fyp.media.test_media_takedown import PUBLISHED, MovingStore, published
from udfs.takedown_audit import TakedownAudit

BODY = {"video_id": "v1", "reason": "copyright: full song", "notice_id": "DMCA-2026-0001", "claimant": "Label Ltd"}


class Desk:
    """The API over a TakedownService whose collaborators are plain Python objects."""

    def __init__(self, videos: dict[str, dict[str, str]] | None = None) -> None:
        self.media = MovingStore(PUBLISHED)
        self.videos = {"v1": {"status": "ready", "author_id": "a1", "seq": "5"}} if videos is None else videos
        self.emitted: list[tuple[str, dict[str, Any]]] = []
        self.audits: list[TakedownAudit] = []
        self.emit_error: Exception | None = None
        self.service = TakedownService(store=self.media, lookup=self.videos.get, emit=self._emit,
                                       audit=self.audits.append, clock=lambda: 1_765_000_000.0)
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:8333",
                          aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                          config=Config(signature_version="s3v4"))
        self.client = TestClient(create_app(s3=s3, bucket="media", store=MemoryUploadStore(),
                                            emit=lambda *_: None, takedowns=self.service))

    def _emit(self, name: str, record: Any) -> None:
        if self.emit_error is not None:
            raise self.emit_error
        self.emitted.append((name, dict(record)))

    def post(self, **changes: Any) -> Any:
        return self.client.post("/v1/takedowns", json={k: v for k, v in {**BODY, **changes}.items() if v is not None})


def test_a_takedown_blocks_the_media_then_emits_then_audits() -> None:
    desk = Desk()
    response = desk.post()
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["objects_moved"] == len(PUBLISHED) and body["previous_status"] == "ready"
    assert published(desk.media) == []
    [(name, record)] = desk.emitted
    assert name == "Takedown"
    assert {k: record[k] for k in ("video_id", "author_id", "notice_id", "action", "claimant", "objects_moved")} == {
        "video_id": "v1", "author_id": "a1", "notice_id": "DMCA-2026-0001", "action": "takedown",
        "claimant": "Label Ltd", "objects_moved": len(PUBLISHED)}
    default_registry().encode("Takedown", record)  # a valid version-2 record
    [audit] = desk.audits
    assert (audit.action, audit.event_id, audit.filed_by) == ("takedown", record["event_id"], "api:testclient")
    assert sorted(audit.objects_moved) == sorted(PUBLISHED)


def test_a_retried_takedown_succeeds_with_the_same_event_id_and_moves_nothing() -> None:
    desk = Desk()
    first, second = desk.post().json(), desk.post()
    assert second.status_code == 202
    assert second.json()["event_id"] == first["event_id"] == takedown_event_id("takedown", "v1", "DMCA-2026-0001",
                                                                                "5")
    assert second.json()["objects_moved"] == 0 and desk.audits[1].objects_moved == ()


def test_emit_failure_is_a_503_after_the_media_is_blocked_and_a_retry_completes() -> None:
    desk = Desk()
    desk.emit_error = RuntimeError("kafka down")
    failed = desk.post()
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "emit_failed"
    assert published(desk.media) == [] and desk.audits == []
    desk.emit_error = None
    assert desk.post().status_code == 202 and len(desk.emitted) == 1 and len(desk.audits) == 1


def test_a_restore_puts_the_media_back_and_emits_a_restore() -> None:
    desk = Desk()
    desk.post()
    desk.videos["v1"]["status"] = "removed"  # what the orchestration job writes after the takedown
    response = desk.post(action="restore", reason="counter-notice", notice_id="CN-1")
    assert response.status_code == 202 and response.json()["objects_moved"] == len(PUBLISHED)
    assert published(desk.media) == sorted(PUBLISHED)
    assert desk.emitted[-1][1]["action"] == "restore" and desk.audits[-1].action == "restore"


def test_a_restore_of_a_video_that_is_not_removed_is_a_409_and_moves_nothing() -> None:
    desk = Desk()
    response = desk.post(action="restore")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_removed"
    assert published(desk.media) == sorted(PUBLISHED) and desk.emitted == []


def test_a_restore_of_a_video_taken_down_mid_pipeline_is_a_409_and_its_media_stays_quarantined() -> None:
    desk = Desk()
    desk.post()
    quarantined = sorted(desk.media.objects)
    # What the orchestration job writes after a takedown of a video still transcoding (udfs/video_record.py).
    desk.videos["v1"].update(status="removed", removed_from="transcoding")
    response = desk.post(action="restore", reason="counter-notice", notice_id="CN-1")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_restorable"
    assert "transcoding" in response.json()["error"]["message"]
    assert sorted(desk.media.objects) == quarantined and published(desk.media) == []
    assert [name for name, _ in desk.emitted] == ["Takedown"] and len(desk.audits) == 1


def test_an_unknown_video_is_a_404_and_emits_nothing() -> None:
    desk = Desk(videos={})
    desk.media = MovingStore([])
    desk.service.store = desk.media
    response = desk.post(video_id="nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "video_not_found"
    assert desk.emitted == [] and desk.audits == []


def test_media_without_a_record_is_still_taken_down() -> None:
    desk = Desk(videos={})
    assert desk.post().status_code == 202 and published(desk.media) == []
    assert desk.emitted[0][1]["author_id"] == ""


@pytest.mark.parametrize(("changes", "field"), [
    ({"video_id": "../v1"}, "video_id"),
    ({"video_id": "v" * 129}, "video_id"),
    ({"reason": ""}, "reason"),
    ({"reason": "r" * 501}, "reason"),
    ({"reason": "line\nforged"}, "reason"),
    ({"notice_id": "N 1"}, "notice_id"),
    ({"notice_id": "n" * 129}, "notice_id"),
    ({"claimant": "c" * 201}, "claimant"),
    ({"action": "delete"}, "action"),
    ({"object_key": "videos/v1/"}, "object_key"),
])
def test_bad_bodies_are_422_naming_the_field(changes: dict[str, Any], field: str) -> None:
    desk = Desk()
    response = desk.post(**changes)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and field in [f["loc"][-1] for f in error["fields"]]
    assert published(desk.media) == sorted(PUBLISHED) and desk.emitted == []


def test_missing_fields_are_422() -> None:
    response = Desk().client.post("/v1/takedowns", json={"video_id": "v1"})
    assert response.status_code == 422
    assert {f["loc"][-1] for f in response.json()["error"]["fields"]} == {"reason", "notice_id"}


def test_without_a_takedown_service_the_path_is_404() -> None:
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="A", aws_secret_access_key="s",
                      config=Config(signature_version="s3v4"))
    app = create_app(s3=s3, bucket="media", store=MemoryUploadStore(), emit=lambda *_: None)
    assert TestClient(app).post("/v1/takedowns", json=BODY).status_code == 404


def test_quarantined_copies_are_byte_identical() -> None:
    desk = Desk()
    desk.post()
    assert all(desk.media.objects[quarantine_key(k)] == k.encode() for k in PUBLISHED)


def test_the_same_notice_filed_again_after_a_restore_is_a_new_event() -> None:
    desk = Desk()
    first = desk.post().json()["event_id"]
    desk.videos["v1"].update(status="removed", seq="6")
    desk.post(action="restore", notice_id="CN-1")
    desk.videos["v1"].update(status="ready", seq="7")
    again = desk.post()
    assert again.status_code == 202 and again.json()["event_id"] != first
    assert again.json()["objects_moved"] == len(PUBLISHED)


def test_a_restore_after_the_record_expired_goes_by_the_quarantine() -> None:
    desk = Desk()
    desk.post()
    desk.videos.clear()
    assert desk.post(action="restore", notice_id="CN-1").status_code == 202
    assert published(desk.media) == sorted(PUBLISHED)
    assert desk.post(action="restore", notice_id="CN-2").status_code == 404  # nothing left to restore


def test_storage_failure_is_a_503_and_a_retry_finishes() -> None:
    desk = Desk()
    desk.media.fail_after = 3
    failed = desk.post()
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "media_move_failed"
    assert desk.emitted == []
    desk.media.fail_after = None
    assert desk.post().status_code == 202 and published(desk.media) == []
