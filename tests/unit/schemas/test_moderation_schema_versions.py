"""ModerationResult version 2 (`actions`), TranscodeCompleted version 3 (`audio_muted`), Takedown version 2
(`action`, `claimant`, `objects_moved`) and Impression version 2 (`arms`), added by the documented
compatible procedure (docs/EVENTS.md, "How to change a schema"): data of old writers decodes with the default, old
reader schemas resolve new data without the field, and a process that lacks the new file refuses new payloads
(`unknown_fingerprint`), which is why readers deploy before writers."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest

from schemas.compat import check_backward_compatible
from schemas.registry import HEADER_SIZE, SCHEMA_DIR, SchemaRegistry, UndecodableEvent, default_registry
from udfs.upload_lifecycle import moderation_actions

RESULT_V1 = {
    "event_id": "e1", "event_time": 1_700_000_000_000, "video_id": "v1", "author_id": "a1",
    "verdict": "AGE_RESTRICT", "reasons": ["nsfw_age_restrict", "music_muted:m1"], "nsfw_score": 0.5,
    "ocr_text": None, "music_id": "m1", "near_duplicate_of": None,
}
COMPLETED_V2 = {
    "event_id": "e2", "event_time": 1_700_000_000_000, "video_id": "v1", "author_id": "a1",
    "renditions": [{"codec": "h264", "width": 320, "height": 240, "bitrate_kbps": 392,
                    "playlist_key": "videos/v1/v1/r/stream/media_0.m3u8"}],
    "hls_master_key": "videos/v1/v1/r/stream/master.m3u8", "dash_manifest_key": "videos/v1/v1/r/stream/manifest.mpd",
    "cover_key": "videos/v1/v1/r/cover.jpg", "audio_key": "videos/v1/v1/r/audio.m4a", "audio_fingerprint": None,
    "duration_ms": 3000, "elapsed_ms": 1500, "stage": "playable", "attempt": 1, "cpu_ms": 900,
}
TAKEDOWN_V1 = {
    "event_id": "e3", "event_time": 1_700_000_000_000, "video_id": "v1", "author_id": "a1", "reason": "copyright",
    "notice_id": "DMCA-1",
}
IMPRESSION_V1 = {
    "event_id": "e4", "event_time": 1_700_000_000_000, "user_id": "u1", "video_id": "v1", "author_id": "a1",
    "sound_id": None, "region": "US", "language": "en", "session_id": "s1", "hashtags": ["cats"], "position": 0,
    "surface": "for_you",
}
# (record, the version before the change, the new field, its value in new data, its default)
CHANGES = [
    ("ModerationResult", 1, RESULT_V1, "actions", ["AGE_RESTRICT", "MUTE_AUDIO"], []),
    ("TranscodeCompleted", 2, COMPLETED_V2, "audio_muted", "m1", None),
    # An old Takedown is a takedown: the default keeps its meaning.
    ("Takedown", 1, TAKEDOWN_V1, "action", "restore", "takedown"),
    ("Takedown", 1, TAKEDOWN_V1, "claimant", "Label Ltd", None),
    ("Takedown", 1, TAKEDOWN_V1, "objects_moved", 11, None),
    # Impressions served before experiments were in none.
    ("Impression", 1, IMPRESSION_V1, "arms", ["ranker_v2:control", "feed_ui:big"], []),
]
_IDS = [f"{c[0]}.{c[3]}" for c in CHANGES]


def _schema(name: str, version: int | None = None) -> dict[str, Any]:
    suffix = "" if version is None else f".v{version}"
    return json.loads((SCHEMA_DIR / f"{name}{suffix}.avsc").read_text())


@pytest.mark.parametrize(("name", "old", "record", "field", "value", "default"), CHANGES, ids=_IDS)
def test_the_new_field_is_a_compatible_addition(
    name: str, old: int, record: dict[str, Any], field: str, value: Any, default: Any
) -> None:
    assert check_backward_compatible(_schema(name, old), _schema(name)) == []
    new_field = next(f for f in _schema(name)["fields"] if f["name"] == field)
    assert new_field["default"] == default
    assert default_registry().latest(name).version == old + 1


@pytest.mark.parametrize(("name", "old", "record", "field", "value", "default"), CHANGES, ids=_IDS)
def test_an_old_writer_decodes_with_the_default(
    name: str, old: int, record: dict[str, Any], field: str, value: Any, default: Any
) -> None:
    registry = default_registry()
    decoded = registry.decode(registry.encode(name, record, version=old))
    assert (decoded.schema_version, decoded.record[field]) == (old, default)
    # A producer that does not know the field yet still encodes with the current version: the default fills it.
    assert registry.decode(registry.encode(name, record)).record[field] == default


@pytest.mark.parametrize(("name", "old", "record", "field", "value", "default"), CHANGES, ids=_IDS)
def test_an_old_reader_reads_new_data_without_the_field(
    name: str, old: int, record: dict[str, Any], field: str, value: Any, default: Any
) -> None:
    registry = default_registry()
    payload = registry.encode(name, {**record, field: value})
    assert registry.decode(payload).record[field] == value
    # Avro schema resolution with the old schema as the reader: the new field is skipped, the rest is intact.
    writer, reader = (fastavro.parse_schema(_strip(s)) for s in (_schema(name), _schema(name, old)))
    seen = fastavro.schemaless_reader(io.BytesIO(payload[HEADER_SIZE:]), writer, reader)
    assert field not in seen
    assert {k: seen[k] for k in record} == record


@pytest.mark.parametrize(("name", "old", "record", "field", "value", "default"), CHANGES, ids=_IDS)
def test_a_process_without_the_new_file_refuses_new_payloads_so_readers_deploy_first(
    name: str, old: int, record: dict[str, Any], field: str, value: Any, default: Any, tmp_path: Path
) -> None:
    # Payloads name their schema by fingerprint: a consumer that does not hold the new file cannot look it up.
    for path in SCHEMA_DIR.glob("*.avsc"):
        if path.name.split(".")[0] != name:
            shutil.copy(path, tmp_path / path.name)
    for version in range(1, old + 1):
        source = SCHEMA_DIR / f"{name}.v{version}.avsc"
        shutil.copy(source, tmp_path / (f"{name}.avsc" if version == old else source.name))
    before = SchemaRegistry.load(tmp_path)
    current = default_registry()
    assert before.decode(current.encode(name, record, version=old)).record == before.decode(
        before.encode(name, record)).record
    with pytest.raises(UndecodableEvent, match="unknown_fingerprint"):
        before.decode(current.encode(name, {**record, field: value}))


def test_an_old_moderation_result_still_says_it_mutes() -> None:
    registry = default_registry()
    decoded = registry.decode(registry.encode("ModerationResult", RESULT_V1, version=1)).record
    assert moderation_actions(decoded) == ("AGE_RESTRICT", "MUTE_AUDIO")


def test_an_unknown_action_is_refused_at_encode() -> None:
    with pytest.raises(ValueError, match="'SHADOW_BAN' is not in list"):  # fastavro's words for an enum miss
        default_registry().encode("ModerationResult", {**RESULT_V1, "actions": ["SHADOW_BAN"]})


def _strip(schema: Any) -> Any:
    # fastavro would turn timestamp-millis into datetimes; the registry reads epoch millis.
    if isinstance(schema, list):
        return [_strip(s) for s in schema]
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k != "logicalType"}
    return schema
