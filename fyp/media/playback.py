"""Check that a published video plays: download its run from S3 and let ffprobe read both manifests.

Used by `fyp demo` (an upload must reach ready and play back) and the upload benchmark. ffprobe reads the HLS
master and the DASH manifest from local files, following their relative URIs to every rendition's segments,
with only the `file` protocol allowed.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["download_run", "probe_manifest", "verify_playback"]


def download_run(s3: Any, bucket: str, hls_master_key: str, into: Path) -> Path:
    """Download every run of the version that holds `hls_master_key` (`{version}/{run}/stream/master.m3u8`)
    into `into` (`into/{run}/...`); return the local `stream/` folder of that run. All runs, because a full
    ladder's manifests reach the playable run's files by relative URIs (`../../{run}/stream/...`)."""
    run_prefix = hls_master_key.rsplit("/stream/", 1)[0]
    version_prefix, _, run = run_prefix.rpartition("/")
    prefix = version_prefix + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            local = into / obj["Key"][len(prefix):]
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(local))
    return into / run / "stream"


def probe_manifest(path: Path) -> list[dict[str, Any]]:
    """ffprobe's streams of a local manifest (HLS or DASH); raises RuntimeError when ffprobe cannot read it."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-protocol_whitelist", "file", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ffprobe cannot read {path.name}: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout).get("streams", [])


def verify_playback(s3: Any, bucket: str, video: dict[str, Any]) -> dict[str, Any]:
    """For a ready video (its decoded Redis hash): which renditions each manifest plays.

    Returns {"hls": [...], "dash": [...], "playable": bool}, each list holding "codec WxH" per video stream
    ffprobe found (and "audio" when there is audio); `playable` is True when both manifests list every
    rendition of the video's `renditions`.
    """
    expected = sorted(f"{_codec(r['codec'])} {r['width']}x{r['height']}" for r in video["renditions"])
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fyp-playback-") as tmp:
        stream = download_run(s3, bucket, video["hls_master_key"], Path(tmp))
        for name, manifest in (("hls", "master.m3u8"), ("dash", "manifest.mpd")):
            try:
                streams = probe_manifest(stream / manifest)
            except RuntimeError as exc:
                found[name], found[f"{name}_error"] = [], str(exc)
                continue
            found[name] = sorted({f"{s['codec_name']} {s['width']}x{s['height']}" if s["codec_type"] == "video"
                                  else s["codec_type"] for s in streams if s["codec_type"] in ("video", "audio")})
    found["playable"] = all({s for s in found[n] if s != "audio"} == set(expected) for n in ("hls", "dash"))
    return found


def _codec(codec: str) -> str:
    """Our codec names as ffprobe spells them."""
    return {"h265": "hevc"}.get(codec, codec)
