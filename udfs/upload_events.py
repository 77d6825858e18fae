"""Upload-lifecycle records as flat history rows, and a video's state as a `videos_changelog` row.

Pure functions (no Flink): `jobs/upload_orchestration.py` decodes every record of fyp.uploads.v1 and
fyp.video-status.v1 with `to_upload_event_row` into `history.upload_events`; `jobs/upload_orchestration.py`
turns each accepted change of a video (`udfs.upload_state.VideoState`) into a `video_row` for
`history.videos_changelog`. `connectors/iceberg_tables.py` builds the Iceberg schemas from the same field lists.

One wide row type for all seven records (a column is null where the record has no such field), so analysts
query one table: `SELECT event_type, count(*) FROM history.upload_events GROUP BY 1`.

>>> from schemas.registry import default_registry
>>> payload = default_registry().encode("Takedown", {"event_id": "e1", "event_time": 1_000, "video_id": "v1",
...     "author_id": "a1", "reason": "dmca", "notice_id": "n1"})
>>> row = dict(zip(UPLOAD_EVENT_FIELD_NAMES, to_upload_event_row(payload)))
>>> row["event_type"], row["video_id"], row["notice_id"], row["error"]
('takedown', 'v1', 'n1', None)
>>> to_upload_event_row(b"junk")[-1]
'bad_marker'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from udfs.upload_state import VideoState

__all__ = [
    "ARRAY_OWNERS",
    "RENDITIONS",
    "RENDITION_FIELDS",
    "UPLOAD_EVENT_FIELD_NAMES",
    "UPLOAD_EVENT_ROW_FIELDS",
    "UPLOAD_EVENT_TYPES",
    "VIDEO_FIELD_NAMES",
    "VIDEO_ROW_FIELDS",
    "to_upload_event_row",
    "video_row",
]

# A rendition as a struct (TranscodeCompleted.renditions). Integers are BIGINT: PyFlink's thread mode throws a
# NullPointerException on a null INT (udfs/envelope.py).
RENDITION_FIELDS: tuple[tuple[str, str], ...] = (
    ("codec", "STRING"), ("width", "BIGINT"), ("height", "BIGINT"), ("bitrate_kbps", "BIGINT"),
    ("playlist_key", "STRING"),
)
RENDITIONS = "ARRAY<ROW<" + ", ".join(f"{n} {t}" for n, t in RENDITION_FIELDS) + ">>"

# (name, Flink SQL type), in row order; `error` last (None for a good record, else why it was not decodable).
UPLOAD_EVENT_ROW_FIELDS: tuple[tuple[str, str], ...] = (
    ("event_type", "STRING"),  # snake_case record name: upload_completed, ..., video_status_changed
    ("event_id", "STRING"),
    ("event_time", "BIGINT"),  # epoch milliseconds
    ("schema_version", "BIGINT"),
    ("video_id", "STRING"),
    ("author_id", "STRING"),
    ("status", "STRING"),  # video_status_changed
    ("reason", "STRING"),  # video_status_changed, transcode_failed, takedown
    ("attempt", "BIGINT"),  # transcode_requested, transcode_failed
    ("upload_id", "STRING"),  # upload_completed ...
    ("object_key", "STRING"),
    ("size_bytes", "BIGINT"),
    ("content_type", "STRING"),
    ("sha256", "STRING"),
    ("caption", "STRING"),
    ("hashtags", "ARRAY<STRING>"),
    ("sound_id", "STRING"),
    ("region", "STRING"),
    ("language", "STRING"),  # ... upload_completed
    ("source_key", "STRING"),  # transcode_requested
    ("stage", "STRING"),  # transcode_*: which part of the ladder, where the producer's schema has the field
    ("renditions", RENDITIONS),  # transcode_completed ...
    ("hls_master_key", "STRING"),
    ("dash_manifest_key", "STRING"),
    ("cover_key", "STRING"),
    ("audio_key", "STRING"),
    ("audio_fingerprint", "STRING"),
    ("duration_ms", "BIGINT"),
    ("elapsed_ms", "BIGINT"),  # ... transcode_completed
    ("verdict", "STRING"),  # moderation_result ...
    ("reasons", "ARRAY<STRING>"),
    ("nsfw_score", "DOUBLE"),
    ("ocr_text", "STRING"),
    ("music_id", "STRING"),
    ("near_duplicate_of", "STRING"),  # ... moderation_result
    ("notice_id", "STRING"),  # takedown
    ("error", "STRING"),
)
UPLOAD_EVENT_FIELD_NAMES: tuple[str, ...] = tuple(n for n, _ in UPLOAD_EVENT_ROW_FIELDS)
UPLOAD_EVENT_TYPES: tuple[str, ...] = (
    "upload_completed", "transcode_requested", "transcode_completed", "transcode_failed", "moderation_result",
    "takedown", "video_status_changed",
)
# The array columns and the one event type that has each: other rows leave them null (jobs/upload_orchestration.py).
ARRAY_OWNERS: dict[str, str] = {
    "hashtags": "upload_completed", "renditions": "transcode_completed", "reasons": "moderation_result",
}
_RECORD_NAMES = {"".join(p.capitalize() for p in t.split("_")): t for t in UPLOAD_EVENT_TYPES}
_COMMON = ("event_type", "event_id", "event_time", "schema_version", "error")


def _rendition(r: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(r.get(name) for name, _ in RENDITION_FIELDS)


def _row(values: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(values.get(name) for name in UPLOAD_EVENT_FIELD_NAMES)


def to_upload_event_row(payload: bytes | None) -> tuple[Any, ...]:
    """A single-object Avro payload of the uploads or status topic as a row of `UPLOAD_EVENT_ROW_FIELDS`.

    A payload that is not one of the seven records gets only `error` set: the registry's reason
    (`too_short`, `bad_marker`, `unknown_fingerprint`, ...) or `not_an_upload_event:<Record>`.
    """
    from schemas.registry import UndecodableEvent, default_registry

    if payload is None:
        return _row({"error": "too_short"})
    try:
        event = default_registry().decode(payload)
    except UndecodableEvent as exc:
        return _row({"error": exc.reason})
    event_type = _RECORD_NAMES.get(event.record_name)
    if event_type is None:
        return _row({"error": f"not_an_upload_event:{event.record_name}"})
    record = event.record
    values = {name: record.get(name) for name in UPLOAD_EVENT_FIELD_NAMES if name not in _COMMON}
    values.update(event_type=event_type, event_id=record["event_id"], event_time=record["event_time"],
                  schema_version=event.schema_version)
    if event_type == "transcode_completed":
        values["renditions"] = [_rendition(r) for r in record["renditions"]]
    if event_type == "upload_completed" and values["hashtags"] is None:
        values["hashtags"] = []
    return _row(values)


# One row per accepted change of a video: the orchestrator's whole state after the change.
VIDEO_ROW_FIELDS: tuple[tuple[str, str], ...] = (
    ("video_id", "STRING"),
    ("seq", "BIGINT"),  # the change's number (1, 2, ...): the latest row of a video has the highest
    ("status", "STRING"),  # uploaded, transcoding, moderating, ready, rejected, failed, removed
    ("reason", "STRING"),  # why this status, when it is not self-explanatory (failures, duplicates)
    ("author_id", "STRING"),
    ("upload_id", "STRING"),
    ("caption", "STRING"),
    ("hashtags", "ARRAY<STRING>"),
    ("sound_id", "STRING"),
    ("region", "STRING"),
    ("language", "STRING"),
    ("sha256", "STRING"),
    ("source_key", "STRING"),
    ("size_bytes", "BIGINT"),
    ("content_type", "STRING"),
    ("duration_ms", "BIGINT"),
    ("width", "BIGINT"),  # of the largest rendition (the source's, as far as the ladder goes)
    ("height", "BIGINT"),
    ("renditions", RENDITIONS),
    ("hls_master_key", "STRING"),
    ("dash_manifest_key", "STRING"),
    ("cover_key", "STRING"),
    ("verdict", "STRING"),  # APPROVE, AGE_RESTRICT, MUTE_AUDIO, REJECT; null before moderation
    ("reasons", "ARRAY<STRING>"),
    ("duplicate_of", "STRING"),
    ("takedown_notice_id", "STRING"),
    ("created_ms", "BIGINT"),  # epoch ms (processing time of the orchestrator); the table has timestamps
    ("updated_ms", "BIGINT"),
)
VIDEO_FIELD_NAMES: tuple[str, ...] = tuple(n for n, _ in VIDEO_ROW_FIELDS)


def video_row(state: VideoState) -> tuple[Any, ...]:
    """The `videos_changelog` row of a state, in `VIDEO_ROW_FIELDS` order.

    >>> row = dict(zip(VIDEO_FIELD_NAMES, video_row(VideoState(video_id="v1", status="uploaded", seq=1))))
    >>> row["video_id"], row["status"], row["renditions"], row["width"]
    ('v1', 'uploaded', [], None)
    """
    # The full ladder, once the orchestrator keeps one (`ladder`), lists every rendition; else the first set.
    transcode = getattr(state, "ladder", None) or state.transcode or {}
    renditions = [_rendition(r) for r in transcode.get("renditions") or ()]
    top = max(renditions, key=lambda r: (r[1] or 0) * (r[2] or 0), default=None)
    values: dict[str, Any] = {
        "video_id": state.video_id, "seq": state.seq, "status": state.status, "reason": state.reason,
        "author_id": state.author_id or None, "upload_id": state.upload_id,
        "caption": state.caption if state.upload_id else None, "hashtags": list(state.hashtags),
        "sound_id": state.sound_id, "region": state.region, "language": state.language, "sha256": state.sha256,
        "source_key": state.source_key, "size_bytes": state.size_bytes, "content_type": state.content_type,
        "duration_ms": transcode.get("duration_ms"), "width": top[1] if top else None,
        "height": top[2] if top else None, "renditions": renditions,
        "hls_master_key": transcode.get("hls_master_key"), "dash_manifest_key": transcode.get("dash_manifest_key"),
        "cover_key": transcode.get("cover_key"), "verdict": state.verdict, "reasons": list(state.reasons),
        "duplicate_of": state.duplicate_of, "takedown_notice_id": state.takedown_notice_id,
        "created_ms": state.created_ms or None, "updated_ms": state.updated_ms,
    }
    return tuple(values[name] for name in VIDEO_FIELD_NAMES)
