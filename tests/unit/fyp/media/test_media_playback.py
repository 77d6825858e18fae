"""`verify_playback`: a real transcode's run, served from a folder the way S3 lists and serves it, read by ffprobe."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from fyp.media.bench import synthesize
from fyp.media.ladder import LadderPolicy, plan_ladder
from fyp.media.playback import verify_playback
from fyp.media.probe import probe
from fyp.media.transcode import transcode

RUN = "videos/v1/v1/run1"


class FolderS3:
    """list_objects_v2 pages and download_file over a local folder: the two calls `download_run` makes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_paginator(self, _: str) -> Any:
        root = self.root

        class Pages:
            def paginate(self, *, Bucket: str, Prefix: str) -> list[dict]:  # boto3's names
                keys = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
                return [{"Contents": [{"Key": k} for k in keys if k.startswith(Prefix)]}]

        return Pages()

    def download_file(self, _bucket: str, key: str, path: str) -> None:
        shutil.copyfile(self.root / key, path)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[FolderS3, dict[str, Any]]:
    d = tmp_path_factory.mktemp("playback")
    source = synthesize(d / "s.mp4", seconds=2, width=320, height=240)
    info = probe(source)
    result = transcode(source, d / "bucket" / RUN, info=info, ladder=plan_ladder(info, LadderPolicy(extra_codecs={})))
    (result.out_dir / "ffmpeg.log").unlink()
    video = {"hls_master_key": f"{RUN}/{result.hls_master}",
             "renditions": [{"codec": r.rung.codec, "width": r.rung.width, "height": r.rung.height}
                            for r in result.renditions]}
    return FolderS3(d / "bucket"), video


def test_both_manifests_play_every_rendition(published: tuple[FolderS3, dict[str, Any]]) -> None:
    s3, video = published
    found = verify_playback(s3, "media", video)
    assert found["playable"], found
    assert found["hls"] == found["dash"] == ["audio", "h264 320x240"]


def test_a_missing_segment_or_rendition_is_not_playable(published: tuple[FolderS3, dict[str, Any]]) -> None:
    s3, video = published
    claimed = {**video, "renditions": [*video["renditions"], {"codec": "h265", "width": 320, "height": 240}]}
    assert not verify_playback(s3, "media", claimed)["playable"]
    broken = FolderS3(s3.root)
    broken.download_file = lambda _b, key, path: (  # type: ignore[method-assign]
        Path(path).write_bytes(b"") if key.endswith(".mpd") else shutil.copyfile(s3.root / key, path))
    found = verify_playback(broken, "media", video)
    assert not found["playable"] and "dash_error" in found
