"""Object keys (path traversal attempts), content sniffing and the upload API's request handling.

Everything here runs without S3: presigning is a local computation in boto3, and `complete` runs against
botocore's Stubber, which checks the calls we make; none of it shows that a real S3 server agrees.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import Stubber
from fastapi.testclient import TestClient

from fyp.media.keys import InvalidKey, new_upload_key, upload_key_id, validate_key, video_prefix
from fyp.media.probe import Limits, sniff
from fyp.uploads.api import create_app
from fyp.uploads.service import content_type_of, upload_completed_record
from fyp.uploads.store import MemoryUploadStore
from schemas.registry import default_registry

UPLOAD_ID = "0f8fad5bd9cb469fa16570867728950e"
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 40


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "uploads/../../etc/passwd",
        "uploads/2026/11/24/..",
        "uploads/./x",
        "/etc/passwd",
        "uploads\\..\\x",
        "uploads//x",
        "uploads/x/",
        "uploads/x\x00.mp4",
        "uploads/x\n",
        "uploads/x\x7f",
        "uploads/caf\u00e9",
        "uploads/%2e%2e/x",
        "uploads/x?y",
        "uploads/x y",
        "",
        "u" * 513,
    ],
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


@pytest.mark.parametrize("key", ["uploads/2026/11/24/abc", "videos/v1/v2/r/stream/seg_0_00001.m4s", "a.b_c"])
def test_safe_keys_pass(key: str) -> None:
    assert validate_key(key) == key


def test_prefix_is_enforced() -> None:
    with pytest.raises(InvalidKey, match="not under"):
        validate_key("videos/x/cover.jpg", prefix="uploads/")


def test_upload_keys_are_made_by_the_server() -> None:
    key = new_upload_key(datetime(2026, 1, 5, 23, 59, tzinfo=UTC))
    assert re.fullmatch(r"uploads/2026/01/05/[0-9a-f]{32}", key)
    assert upload_key_id(key) == key.rsplit("/", 1)[1]
    assert new_upload_key() != new_upload_key()
    with pytest.raises(InvalidKey):
        new_upload_key(upload_id="../../x")
    with pytest.raises(InvalidKey):
        upload_key_id("uploads/2026/01/05/not-a-uuid")


def test_video_prefix_checks_its_parts() -> None:
    assert video_prefix("abc", "v1") == "videos/abc/v1/"
    for bad in ("..", "a/b", "a b", ""):
        with pytest.raises(InvalidKey):
            video_prefix(bad, "v1")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (MP4_HEAD, "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "video/x-matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video/x-msvideo"),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"\x00\x00\x00\x18ftypheic", None),
        (b"hello, world", None),
        (b"", None),
    ],
)
def test_content_type_comes_from_the_bytes(head: bytes, expected: str | None) -> None:
    assert content_type_of(sniff(head), head) == expected


# --- the API ---------------------------------------------------------------------------------------------

BODY = {
    "author_id": "author_1",
    "caption": "first try",
    "hashtags": ["fyp", "dance_2026"],
    "sound_id": None,
    "region": "US",
    "language": "en",
    "content_type": "video/mp4",
    "size_bytes": 123_456,
}


class Api:
    def __init__(self, limits: Limits = Limits()) -> None:
        self.s3 = boto3.client(
            "s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:8333",
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        self.stub = Stubber(self.s3)
        self.store = MemoryUploadStore()
        self.emitted: list[tuple[str, dict[str, Any]]] = []
        app = create_app(s3=self.s3, bucket="media", store=self.store, limits=limits,
                         emit=lambda name, record: self.emitted.append((name, dict(record))))
        self.client = TestClient(app)

    def create(self, **changes: Any) -> Any:
        return self.client.post("/v1/uploads", json={**BODY, **changes})

    def stub_object(self, key: str, data: bytes) -> None:
        self.stub.add_response("head_object", {"ContentLength": len(data)}, {"Bucket": "media", "Key": key})
        if not data:
            self.stub.add_response("delete_object", {}, {"Bucket": "media", "Key": key})
            return
        head = data[:64]
        self.stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(head), len(head))},
                               {"Bucket": "media", "Key": key, "Range": "bytes=0-63"})
        if content_type_of(sniff(head), head) is None:
            self.stub.add_response("delete_object", {}, {"Bucket": "media", "Key": key})
            return
        self.stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data))},
                               {"Bucket": "media", "Key": key})


def test_create_returns_a_presigned_put_for_a_server_chosen_key() -> None:
    api = Api()
    response = api.create()
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"uploads/\d{4}/\d{2}/\d{2}/[0-9a-f]{32}", body["object_key"])
    assert body["object_key"].endswith(body["upload_id"])
    assert body["put_url"].startswith(f"http://127.0.0.1:8333/media/{body['object_key']}?")
    assert "X-Amz-Signature=" in body["put_url"] and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in body["put_url"]
    assert body["expires_in"] == 900 and body["headers"] == {"Content-Type": "video/mp4"}
    assert api.store.get(body["upload_id"]).status == "pending"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"object_key": "uploads/mine"}, "object_key"),  # the client cannot choose the key
        ({"content_type": "image/png"}, "content_type"),
        ({"size_bytes": 0}, "size_bytes"),
        ({"region": "usa"}, "region"),
        ({"hashtags": ["#fyp"]}, "hashtags"),
        ({"author_id": "../x"}, "author_id"),
        ({"caption": "x" * 2201}, "caption"),
    ],
)
def test_create_validates_the_request(changes: dict[str, Any], field: str) -> None:
    response = Api().create(**changes)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert any(field in map(str, f["loc"]) for f in error["fields"])


def test_create_refuses_a_declared_size_over_the_limit() -> None:
    response = Api(Limits(max_size_bytes=1000)).create(size_bytes=1001)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_complete_hashes_emits_once_and_is_idempotent() -> None:
    api = Api()
    created = api.create().json()
    data = MP4_HEAD + b"\x01" * 5000
    api.stub_object(created["object_key"], data)
    with api.stub:
        first = api.client.post(f"/v1/uploads/{created['upload_id']}/complete")
        again = api.client.post(f"/v1/uploads/{created['upload_id']}/complete")
    assert first.status_code == 200, first.text
    assert first.json() == again.json()
    assert first.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert first.json()["status"] == "completed" and first.json()["size_bytes"] == len(data)
    (name, record), = api.emitted  # the second call emitted nothing
    assert name == "UploadCompleted"
    assert record["object_key"] == created["object_key"] and record["hashtags"] == ["fyp", "dance_2026"]
    default_registry().encode("UploadCompleted", record)  # fits the schema


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 422, "zero_bytes"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 422, "not_a_video:image"),
        (b"just some text\n" * 10, 422, "not_a_video:text"),
    ],
)
def test_complete_rejects_what_is_not_a_video(data: bytes, status: int, code: str) -> None:
    api = Api()
    created = api.create().json()
    api.stub_object(created["object_key"], data)
    with api.stub:
        response = api.client.post(f"/v1/uploads/{created['upload_id']}/complete")
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert api.emitted == []
    api.stub.assert_no_pending_responses()  # the refused object was deleted


def test_complete_before_the_put_is_a_conflict() -> None:
    api = Api()
    created = api.create().json()
    api.stub.add_client_error("head_object", "404", http_status_code=404)
    with api.stub:
        response = api.client.post(f"/v1/uploads/{created['upload_id']}/complete")
    assert response.status_code == 409 and response.json()["error"]["code"] == "object_missing"
    assert api.store.claim(created["upload_id"])  # the claim was released: the client may retry


@pytest.mark.parametrize("upload_id", [UPLOAD_ID, "..%2F..%2Fetc", "not-hex"])
def test_complete_unknown_upload_is_404(upload_id: str) -> None:
    response = Api().client.post(f"/v1/uploads/{upload_id}/complete")
    assert response.status_code == 404
    assert response.json()["error"]["code"] in ("upload_not_found", "not_found")


def test_a_sigv2_client_is_refused() -> None:
    legacy = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s",
                          config=Config(signature_version="s3"))
    with pytest.raises(ValueError, match="SigV4"):
        create_app(s3=legacy, bucket="media", store=MemoryUploadStore(), emit=lambda *_: None)


def test_emit_failure_is_a_503_and_retryable() -> None:
    api = Api()
    created = api.create().json()
    failing = create_app(s3=api.s3, bucket="media", store=api.store,
                         emit=lambda *_: (_ for _ in ()).throw(RuntimeError("kafka down")))
    api.stub_object(created["object_key"], MP4_HEAD + b"\x00" * 10)
    with api.stub:
        response = TestClient(failing).post(f"/v1/uploads/{created['upload_id']}/complete")
    assert response.status_code == 503 and response.json()["error"]["code"] == "emit_failed"
    assert api.store.get(created["upload_id"]).status == "pending"


def test_upload_completed_event_id_is_stable() -> None:
    api = Api()
    created = api.create().json()
    upload = api.store.get(created["upload_id"])
    a = upload_completed_record(upload, now_ms=1)["event_id"]
    assert a == upload_completed_record(upload, now_ms=2)["event_id"]
