"""The codec of the video hash `fyp:video:v1:{video_id}` (docs/UPLOADS.md, "Video metadata in Redis").

The upload orchestration job writes the hash (`video_fields`, via `connectors.redis_video_store`); the CLI,
the benchmarks, the embedding job and the encoders read it (`decode_video`). Every value is a string; absent
values are left out; the list fields (`JSON_FIELDS`) are JSON. Pure Python, so the Flink job can import it.

>>> fields = encode_video({"video_id": "v1", "status": "ready", "hashtags": ["cats"], "seq": 3, "verdict": None})
>>> fields
{'video_id': 'v1', 'status': 'ready', 'hashtags': '["cats"]', 'seq': '3'}
>>> decode_video(fields)["hashtags"]
['cats']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from udfs.upload_state import VideoState

__all__ = ["JSON_FIELDS", "decode_video", "encode_video", "video_fields"]

# The list-valued fields: hashtags (strings), renditions ({codec, width, height, bitrate_kbps, playlist_key}),
# reasons and actions (moderation's). Everything else is a scalar, stored with `str` and read back as that string.
JSON_FIELDS = frozenset({"hashtags", "renditions", "reasons", "actions"})


def encode_video(values: Mapping[str, Any]) -> dict[str, str]:
    """The hash of `values`: None left out, `JSON_FIELDS` as JSON, anything else as `str(value)`."""
    return {name: json.dumps(list(value)) if name in JSON_FIELDS else str(value)
            for name, value in values.items() if value is not None}


def decode_video(fields: Mapping[Any, Any]) -> dict[str, Any]:
    """The hash as Redis returns it (bytes or str keys and values) with its `JSON_FIELDS` decoded; the scalars
    stay strings (e.g. `seq`, `updated_at`: the caller converts what it needs)."""
    text = {_text(k): _text(v) for k, v in fields.items()}
    return {k: json.loads(v) if k in JSON_FIELDS else v for k, v in text.items()}


def video_fields(state: VideoState) -> dict[str, str]:
    """The hash of a video's lifecycle state, as the orchestration job writes it on every change."""
    # The full ladder, once published, replaces the playable set's renditions and manifests (it lists them too).
    transcode = state.ladder or state.transcode or {}
    return encode_video({
        "video_id": state.video_id,
        "status": state.status,
        "status_reason": state.reason,
        "author_id": state.author_id or None,
        "upload_id": state.upload_id,
        "caption": state.caption if state.upload_id else None,
        "hashtags": state.hashtags if state.upload_id else None,
        "sound_id": state.sound_id,
        "region": state.region,
        "language": state.language,
        "sha256": state.sha256,
        "source_key": state.source_key,
        "size_bytes": state.size_bytes,
        "content_type": state.content_type,
        "stage": state.stage,
        "attempt": state.attempt or None,
        "renditions": transcode["renditions"] if transcode else None,
        "hls_master_key": transcode.get("hls_master_key"),
        "dash_manifest_key": transcode.get("dash_manifest_key"),
        "cover_key": transcode.get("cover_key"),
        "audio_key": transcode.get("audio_key"),
        # The catalogue track whose mute decision made the published audio silent (TranscodeCompleted v3).
        "audio_muted": transcode.get("audio_muted"),
        "duration_ms": transcode.get("duration_ms"),
        "transcode_elapsed_ms": (state.transcode or {}).get("elapsed_ms"),
        "ladder": ("full" if state.ladder else "playable") if state.transcode else None,
        "ladder_error": state.ladder_error,
        "verdict": state.verdict,
        "reasons": state.reasons if state.verdict else None,
        "actions": state.actions if state.verdict else None,
        "ocr_text": state.ocr_text or None,
        "duplicate_of": state.duplicate_of,
        "takedown_notice_id": state.takedown_notice_id,
        # The status a takedown replaced: the takedown desk refuses a restore that the orchestration would ignore
        # (fyp.uploads.takedowns), before it moves the quarantined media back.
        "removed_from": state.removed_from,
        "created_at": state.created_ms or None,
        "updated_at": state.updated_ms,
        "seq": state.seq,
    })


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
