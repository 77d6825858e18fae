"""Takedowns on the real stack: upload API (POST /v1/takedowns) and `fyp takedown`, S3 (SeaweedFS), Kafka, the
upload_orchestration and video_embeddings jobs, the index service, and the Iceberg audit table.

One clip is uploaded and followed until it is searchable. Then, in file order: a takedown over HTTP makes every
published key unreadable, the video `removed`, gone from the index and from candidates, with an audit row; the
same request again succeeds and moves nothing; `fyp takedown --restore` (a counter-notice) puts back the same keys,
the video is `ready` and searchable again. Prints the time each step took.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from connectors.redis_video_store import FRESH_VIDEOS_KEY
from fyp.cli import app as fyp_app
from fyp.media.keys import video_root
from fyp.media.publish import make_s3_client
from fyp.uploads.client import HttpUploads, upload_file
from schemas.tables import TAKEDOWNS
from tests.integration.conftest import eventually, uploads_and_index
from tests.integration.test_upload_pipeline import _make_video

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 120
NOTICE = f"IT-DMCA-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def stack(settings, running_job, tmp_path_factory):
    """The two jobs, the workers, the upload API and an index service of its own (a fresh index name)."""
    with uploads_and_index(settings, running_job, tmp_path_factory.mktemp("takedown-logs"), "it-td") as parts:
        yield {**parts, "s3": make_s3_client(settings)}


def _status(stack: dict[str, Any], video_id: str) -> str | None:
    return (stack["store"].read(video_id) or {}).get("status")


def _searchable(stack: dict[str, Any], video_id: str) -> bool:
    return stack["index"].get(f"/v1/similar/{video_id}", params={"k": 1}).status_code == 200


def _candidates(stack: dict[str, Any]) -> set[str]:
    """Candidates for a user with no history (exploration and the fresh pool: where a new video shows)."""
    body = stack["index"].get("/v1/candidates", params={"user": f"it-td-nobody-{uuid.uuid4().hex[:6]}",
                                                       "k": 100}).json()
    return {r["video_id"] for r in body["results"]}


def _readable(s3: Any, bucket: str, keys: list[str]) -> dict[str, int | str]:
    """key -> size read back, or the S3 error code."""
    found: dict[str, int | str] = {}
    for key in keys:
        try:
            found[key] = len(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as exc:
            found[key] = exc.response.get("Error", {}).get("Code", "error")
    return found


@pytest.fixture(scope="module")
def video(settings, stack, tmp_path_factory) -> dict[str, Any]:
    """One clip, uploaded over HTTP and followed until searchable; with its published keys and their sizes."""
    source = _make_video(tmp_path_factory.mktemp("takedown-upload") / "clip.mp4")
    done = upload_file(source, {"author_id": "it_td_author", "caption": "a takedown test clip",
                                "hashtags": ["takedown"], "region": "US", "language": "en"}, HttpUploads(stack["api"]))
    video_id = done["video_id"]

    def settled() -> bool:
        # Ready, searchable, and the second stage over: its objects are published (or it failed), so the keys
        # listed below are all the video will have.
        stack["workers"].check_alive()
        hashed = stack["store"].read(video_id) or {}
        second_stage_over = hashed.get("ladder") == "full" or bool(hashed.get("ladder_error"))
        return hashed.get("status") == "ready" and second_stage_over and _searchable(stack, video_id)

    eventually(settled, timeout_s=READY_TIMEOUT_S, interval_s=0.2, message=f"{video_id} ready, full, searchable")
    keys = sorted(o["Key"] for page in stack["s3"].get_paginator("list_objects_v2").paginate(
        Bucket=settings.media_bucket, Prefix=video_root(video_id)) for o in page.get("Contents", []))
    sizes = _readable(stack["s3"], settings.media_bucket, keys)
    assert keys and all(isinstance(s, int) for s in sizes.values()), sizes
    return {"video_id": video_id, "keys": keys, "sizes": sizes}


def test_a_takedown_blocks_every_key_and_removes_the_video_everywhere(settings, stack, video, redis_client) -> None:
    video_id = video["video_id"]
    eventually(lambda: video_id in _candidates(stack), timeout_s=30, message="the new video among the candidates")
    body = {"video_id": video_id, "reason": "copyright: integration test", "notice_id": NOTICE,
            "claimant": "IT Rights Ltd"}
    started = time.monotonic()
    response = httpx.post(f"{stack['api']}/v1/takedowns", json=body, timeout=60)
    answered_s = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert response.json()["objects_moved"] == len(video["keys"])

    # Blocked when the API answers: every published key is unreadable, nothing new appeared under the prefix.
    unreadable = _readable(stack["s3"], settings.media_bucket, video["keys"])
    assert set(unreadable.values()) == {"NoSuchKey"}, unreadable
    listed = stack["s3"].list_objects_v2(Bucket=settings.media_bucket, Prefix=video_root(video_id))
    assert listed.get("KeyCount", 0) == 0

    # Removed, then gone from the index; candidates never show it from then on.
    eventually(lambda: _status(stack, video_id) == "removed", timeout_s=30, interval_s=0.05, message="removed")
    removed_s = time.monotonic() - started
    eventually(lambda: not _searchable(stack, video_id), timeout_s=30, interval_s=0.05, message="gone from index")
    gone_s = time.monotonic() - started
    for _ in range(5):
        assert video_id not in _candidates(stack)
        time.sleep(0.2)
    assert redis_client.zscore(FRESH_VIDEOS_KEY, video_id) is None
    assert redis_client.zscore("fyp:author_videos:v1:it_td_author", video_id) is None
    print(f"\ntakedown of {len(video['keys'])} objects: API answered (media blocked) {answered_s * 1000:.0f} ms "
          f"{response.json()['timings_ms']}, "
          f"status removed {removed_s:.2f} s, gone from the index {gone_s:.2f} s")

    # The audit row.
    from pyiceberg.expressions import EqualTo

    from connectors.iceberg_tables import catalog

    rows = catalog(settings).load_table(TAKEDOWNS).scan(row_filter=EqualTo("video_id", video_id)).to_arrow()
    [row] = rows.to_pylist()
    assert (row["action"], row["notice_id"], row["claimant"], row["objects_count"]) == (
        "takedown", NOTICE, "IT Rights Ltd", len(video["keys"]))
    assert sorted(row["objects"]) == video["keys"] and row["filed_by"].startswith("api:")


def test_a_repeated_takedown_succeeds_and_moves_nothing(settings, stack, video) -> None:
    body = {"video_id": video["video_id"], "reason": "copyright: integration test", "notice_id": NOTICE}
    response = httpx.post(f"{stack['api']}/v1/takedowns", json=body, timeout=60)
    assert response.status_code == 202, response.text
    assert (response.json()["objects_moved"], response.json()["previous_status"]) == (0, "removed")
    assert _status(stack, video["video_id"]) == "removed"


def test_bad_requests_are_clear_4xx(stack) -> None:
    url = f"{stack['api']}/v1/takedowns"
    assert httpx.post(url, json={"video_id": "v1"}, timeout=30).status_code == 422
    unknown = httpx.post(url, json={"video_id": f"nope-{uuid.uuid4().hex}", "reason": "r", "notice_id": "N-1"},
                         timeout=30)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "video_not_found")


def test_a_counter_notice_restores_the_same_keys(settings, stack, video) -> None:
    video_id = video["video_id"]
    started = time.monotonic()
    result = CliRunner().invoke(fyp_app, ["takedown", video_id, "--restore", "--notice-id", f"CN-{NOTICE}",
                                          "--api", stack["api"], "--json"])
    answered_s = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["objects_moved"] == len(video["keys"])
    assert _readable(stack["s3"], settings.media_bucket, video["keys"]) == video["sizes"]
    eventually(lambda: _status(stack, video_id) == "ready", timeout_s=30, interval_s=0.05, message="ready again")
    ready_s = time.monotonic() - started
    eventually(lambda: _searchable(stack, video_id), timeout_s=60, interval_s=0.1, message="searchable again")
    print(f"\nrestore of {len(video['keys'])} objects: CLI answered (media back) {answered_s * 1000:.0f} ms "
          f"{json.loads(result.stdout)['timings_ms']}, "
          f"ready {ready_s:.2f} s, searchable {time.monotonic() - started:.2f} s")
    quarantined = stack["s3"].list_objects_v2(Bucket=settings.media_bucket, Prefix=f"quarantine/{video_root(video_id)}")
    assert quarantined.get("KeyCount", 0) == 0


def test_the_demos_takedown_probe_finds_no_readable_key(settings, stack, video) -> None:
    """`fyp demo`'s takedown (fyp.commands.demo_index.takedown_and_probe), after the restore above: the probe
    lists what was published, files the takedown in-process like `fyp takedown`, and reads every key back."""
    from fyp.commands.demo_index import takedown_and_probe

    probe = takedown_and_probe(settings, video["video_id"])
    assert (probe["published_keys"], probe["objects_moved"], probe["still_readable"]) == (
        len(video["keys"]), len(video["keys"]), 0), probe
    assert set(_readable(stack["s3"], settings.media_bucket, video["keys"]).values()) == {"NoSuchKey"}
    eventually(lambda: _status(stack, video["video_id"]) == "removed", timeout_s=30, interval_s=0.05,
               message="removed by the demo's takedown")
