"""Schemas, wire format, registry, compatibility rules and topics."""

from __future__ import annotations

import copy
import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.utils import generate_many
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.compat import check_backward_compatible
from schemas.decoder import UnsupportedSchema, compile_decoder
from schemas.registry import (
    EVENT_TYPES,
    MARKER,
    NAMESPACE,
    SCHEMA_DIR,
    SchemaError,
    SchemaRegistry,
    UndecodableEvent,
    default_registry,
    event_type_of,
)
from schemas.topics import ALL_TOPICS, ENGAGEMENT, Topic

CONTEXT = (
    "event_id", "event_time", "schema_version", "user_id", "video_id", "author_id", "sound_id",
    "region", "language", "session_id", "hashtags",
)  # fmt: skip
ENGAGEMENT_RECORDS = (
    "Impression", "Watch", "Loop", "Skip", "Like", "Share", "Save", "Follow", "Comment",
    "SoundEngagement", "NotInterested",
)  # fmt: skip


def _strip_logical(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strip_logical(s) for s in schema]
    if isinstance(schema, dict):
        return {k: _strip_logical(v) for k, v in schema.items() if k != "logicalType"}
    return schema


def _fastavro_read(schema: Any, body: bytes, reader: Any = None) -> dict[str, Any]:
    parsed = fastavro.parse_schema(_strip_logical(schema))
    return fastavro.schemaless_reader(io.BytesIO(body), parsed, reader and fastavro.parse_schema(reader))


def _fastavro_write(schema: Any, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(copy.deepcopy(schema)), record)
    return out.getvalue()


def _crc64_avro(data: bytes) -> int:
    """The Avro spec's reference fingerprint algorithm, independent of fastavro's."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def _watch(**overrides: Any) -> dict[str, Any]:
    record = {
        "event_id": "4b1c6a0e-8f7e-4f6a-9d1e-000000000001",
        "event_time": 1_700_000_000_123,
        "user_id": "u1",
        "video_id": "v2",
        "author_id": "a3",
        "sound_id": "snd4",
        "region": "JP",
        "language": "ja",
        "session_id": "s-1",
        "hashtags": ["fyp", "ダンス"],
        "watch_ms": 12_345,
        "video_duration_ms": 30_000,
    }
    return {**record, **overrides}


# --- the schema files ----------------------------------------------------------------------------


def test_every_record_is_loaded_with_its_event_type() -> None:
    registry = default_registry()
    assert set(ENGAGEMENT_RECORDS) <= set(registry.record_names)
    assert tuple(event_type_of(r) for r in ENGAGEMENT_RECORDS) == EVENT_TYPES
    for name in ("UploadCompleted", "TranscodeCompleted", "ModerationResult", "VideoEmbedding", "DeadLetter"):
        assert registry.latest(name).event_type == event_type_of(name)


@pytest.mark.parametrize("name", ENGAGEMENT_RECORDS)
def test_engagement_records_start_with_the_shared_context(name: str) -> None:
    fields = default_registry().latest(name).schema["fields"]
    assert tuple(f["name"] for f in fields[: len(CONTEXT)]) == CONTEXT
    types = {f["name"]: f["type"] for f in fields}
    assert types["event_time"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert types["sound_id"] == ["null", "string"]
    assert all(types[k] == "string" for k in ("event_id", "user_id", "video_id", "author_id", "session_id"))


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("*.avsc")), ids=lambda p: p.name)
def test_every_file_is_a_versioned_record_in_the_namespace(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["namespace"] == NAMESPACE
    assert schema["name"] == path.name.split(".")[0]
    version = next(f for f in schema["fields"] if f["name"] == "schema_version")
    assert version["type"] == "int" and version["default"] >= 1
    ids = [f for f in schema["fields"] if f["name"].endswith("_id") and f["name"] != "event_id"]
    assert all(f["type"] in ("string", ["null", "string"]) for f in ids), "ids are strings"


# --- wire format -----------------------------------------------------------------------------------


def test_payload_is_single_object_encoding_with_the_spec_fingerprint() -> None:
    registry = default_registry()
    entry = registry.latest("Watch")
    payload = registry.encode("Watch", _watch())
    canonical = fastavro.schema.to_parsing_canonical_form(fastavro.parse_schema(dict(entry.schema)))
    assert payload[:2] == MARKER == b"\xc3\x01"
    assert payload[2:10] == _crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert payload[10:] == _fastavro_write(entry.schema, {**_watch(), "schema_version": 1})


def test_fingerprint_matches_the_avro_test_vector() -> None:
    # From the Avro spec's test data: CRC-64-AVRO of the schema "null", as a signed 64-bit integer.
    assert _crc64_avro(b'"null"') == 7195948357588979594


@pytest.mark.parametrize("name", sorted(default_registry().record_names))
def test_generated_decoder_agrees_with_fastavro_on_random_records(name: str) -> None:
    registry = default_registry()
    schema = registry.latest(name).schema
    for record in generate_many(copy.deepcopy(schema), 40):
        record["schema_version"] = registry.latest(name).version
        payload = registry.encode(name, record)
        decoded = registry.decode(payload)
        assert decoded.record == _fastavro_read(schema, payload[10:])
        assert (decoded.record_name, decoded.schema_version) == (name, registry.latest(name).version)


def test_decode_returns_epoch_millis_and_the_event_type() -> None:
    registry = default_registry()
    event = registry.decode(registry.encode("fyp.events.Watch", _watch()))
    assert event.event_type == "watch"
    assert event.record == {**_watch(), "schema_version": 1}
    assert (
        registry.decode(bytearray(registry.encode("Watch", _watch()))).record["event_time"]
        == 1_700_000_000_123
    )


def test_encode_fills_defaults_and_rejects_a_wrong_version() -> None:
    registry = default_registry()
    record = _watch()
    del record["sound_id"], record["hashtags"]
    assert registry.decode(registry.encode("Watch", record)).record["hashtags"] == []
    with pytest.raises(ValueError, match="schema_version=7"):
        registry.encode("Watch", _watch(schema_version=7))
    with pytest.raises(KeyError, match="Nope"):
        registry.encode("Nope", {})


# --- decode errors ---------------------------------------------------------------------------------


def _bad_union(payload: bytes) -> bytes:
    # sound_id's union index follows event_id (1 + 36), event_time (6), version, user/video/author ids.
    body = bytearray(payload)
    pos = 10 + 1 + 36 + 6 + 1 + 3 + 3 + 3
    assert body[pos] == 2  # branch 1 (string), zig-zag
    body[pos] = 8
    return bytes(body)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "too_short"),
        (b"\xc3", "too_short"),
        (b"\xc3\x01\x00\x01", "too_short"),
        (b"{json: 1}", "bad_marker"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown_fingerprint"),
        (default_registry().encode("Watch", _watch())[:-1], "truncated_body"),
        (default_registry().encode("Watch", _watch()) + b"\x00", "corrupt_body"),
        (_bad_union(default_registry().encode("Watch", _watch())), "corrupt_body"),
        (
            default_registry().encode("Watch", _watch(user_id="ü")).replace("ü".encode(), b"\xff\xfe"),
            "corrupt_body",
        ),
    ],
    ids=[
        "empty",
        "one-byte",
        "short-header",
        "bad-marker",
        "unknown-fp",
        "truncated",
        "trailing",
        "union",
        "utf8",
    ],
)
def test_decode_errors_have_a_machine_readable_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(UndecodableEvent) as caught:
        default_registry().decode(payload)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def test_every_truncation_of_a_payload_is_undecodable() -> None:
    registry = default_registry()
    payload = registry.encode("Watch", _watch())
    for cut in range(len(payload)):
        with pytest.raises(UndecodableEvent):
            registry.decode(payload[:cut])


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=120), name=st.sampled_from(sorted(default_registry().record_names)))
def test_decode_raises_only_undecodable_on_random_bodies(body: bytes, name: str) -> None:
    registry = default_registry()
    try:
        registry.decode(registry.latest(name).header + body)
    except UndecodableEvent as exc:
        assert exc.reason in ("truncated_body", "corrupt_body")


def test_compile_decoder_rejects_recursive_types() -> None:
    node = {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
    with pytest.raises(UnsupportedSchema, match="recursive"):
        compile_decoder(node)


# --- versions ----------------------------------------------------------------------------------------


def _copy_schemas(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(SCHEMA_DIR / f"{name}.avsc", tmp_path / f"{name}.avsc")
    return tmp_path


def _watch_v2(tmp_path: Path) -> dict[str, Any]:
    """Moves Watch.avsc to Watch.v1.avsc and writes a v2 with a new defaulted field and a wider type."""
    v1 = json.loads((tmp_path / "Watch.avsc").read_text())
    (tmp_path / "Watch.v1.avsc").write_text(json.dumps(v1))
    v2 = copy.deepcopy(v1)
    for field in v2["fields"]:
        if field["name"] == "schema_version":
            field["default"] = 2
    v2["fields"].append({"name": "muted", "type": "boolean", "default": False})
    (tmp_path / "Watch.avsc").write_text(json.dumps(v2))
    return v2


def test_old_versions_decode_into_the_current_shape(tmp_path: Path) -> None:
    _watch_v2(_copy_schemas(tmp_path, "Watch", "Save"))
    registry = SchemaRegistry.load(tmp_path)
    assert [v.version for v in registry.versions("Watch")] == [1, 2]
    old = registry.decode(registry.encode("Watch", _watch(), version=1))
    new = registry.decode(registry.encode("Watch", _watch(muted=True)))
    assert (old.schema_version, old.record["muted"], old.record["schema_version"]) == (1, False, 1)
    assert (new.schema_version, new.record["muted"]) == (2, True)
    assert old.record["event_time"] == 1_700_000_000_123


def test_registry_rejects_inconsistent_files(tmp_path: Path) -> None:
    _copy_schemas(tmp_path, "Watch")
    shutil.copy(tmp_path / "Watch.avsc", tmp_path / "Watch.v1.avsc")
    with pytest.raises(SchemaError, match="same version"):
        SchemaRegistry.load(tmp_path)
    (tmp_path / "Watch.v1.avsc").rename(tmp_path / "Watch.v3.avsc")
    with pytest.raises(SchemaError, match="file name says 3"):
        SchemaRegistry.load(tmp_path)
    (tmp_path / "Watch.v3.avsc").unlink()
    (tmp_path / "watch_old.avsc").write_text("{}")
    with pytest.raises(SchemaError, match=r"named <Record>\.avsc"):
        SchemaRegistry.load(tmp_path)


def test_registry_rejects_a_version_that_changes_only_defaults(tmp_path: Path) -> None:
    _copy_schemas(tmp_path, "Save")
    schema = json.loads((tmp_path / "Save.avsc").read_text())
    (tmp_path / "Save.v1.avsc").write_text(json.dumps(schema))
    next(f for f in schema["fields"] if f["name"] == "schema_version")["default"] = 2
    (tmp_path / "Save.avsc").write_text(json.dumps(schema))
    with pytest.raises(SchemaError, match="same fingerprint"):
        SchemaRegistry.load(tmp_path)


# --- backward compatibility ----------------------------------------------------------------------


def _record(*fields: dict[str, Any], name: str = "E") -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t", "fields": list(fields)}


def _enum(*symbols: str) -> dict[str, Any]:
    return {"name": "e", "type": {"type": "enum", "name": "Kind", "symbols": list(symbols)}}


BASE = _record({"name": "a", "type": "int"}, {"name": "s", "type": "string"})
# name: (new schema, what it reads from old data {"a": 7, "s": "hi"})
COMPATIBLE = {
    "add-field-with-default": (
        _record(*BASE["fields"], {"name": "b", "type": "long", "default": 0}),
        {"a": 7, "s": "hi", "b": 0},
    ),
    "remove-field": (_record({"name": "a", "type": "int"}), {"a": 7}),
    "int-to-long": (
        _record({"name": "a", "type": "long"}, {"name": "s", "type": "string"}),
        {"a": 7, "s": "hi"},
    ),
    "int-to-double": (
        _record({"name": "a", "type": "double"}, {"name": "s", "type": "string"}),
        {"a": 7.0, "s": "hi"},
    ),
    "string-to-bytes": (
        _record({"name": "a", "type": "int"}, {"name": "s", "type": "bytes"}),
        {"a": 7, "s": b"hi"},
    ),
    "make-nullable": (
        _record({"name": "a", "type": "int"}, {"name": "s", "type": ["null", "string"]}),
        {"a": 7, "s": "hi"},
    ),
    "rename-with-alias": (
        _record({"name": "a", "type": "int"}, {"name": "text", "type": "string", "aliases": ["s"]}),
        {"a": 7, "text": "hi"},
    ),
}
INCOMPATIBLE = {
    "add-field-without-default": (
        _record(*BASE["fields"], {"name": "b", "type": "long"}),
        "without a default",
    ),
    "narrow-int": (
        _record({"name": "a", "type": "float"}, {"name": "s", "type": "int"}),
        "cannot be read as int",
    ),
    "string-to-int": (_record({"name": "a", "type": "int"}, {"name": "s", "type": "int"}), "cannot be read"),
    "rename-record": (_record(*BASE["fields"], name="F"), "renamed"),
}


@pytest.mark.parametrize(("new", "expected"), COMPATIBLE.values(), ids=COMPATIBLE.keys())
def test_compatible_changes_pass_and_old_data_reads_with_the_new_schema(
    new: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert check_backward_compatible(BASE, new) == []
    old_data = _fastavro_write(BASE, {"a": 7, "s": "hi"})
    assert _fastavro_read(BASE, old_data, reader=new) == expected


@pytest.mark.parametrize(("new", "problem"), INCOMPATIBLE.values(), ids=INCOMPATIBLE.keys())
def test_incompatible_changes_are_reported_and_fastavro_agrees(new: dict[str, Any], problem: str) -> None:
    problems = check_backward_compatible(BASE, new)
    assert problems and problem in problems[0]
    with pytest.raises(Exception):  # noqa: B017 - fastavro raises several types for schema mismatches
        _fastavro_read(BASE, _fastavro_write(BASE, {"a": 7, "s": "hi"}), reader=new)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (_record(_enum("A", "B")), _record(_enum("A", "B", "C")), None),
        (_record(_enum("A", "B")), _record(_enum("C", "A", "B")), "append new symbols"),
        (_record(_enum("A", "B")), _record(_enum("A")), "removed without an enum default"),
        (
            _record({"name": "s", "type": ["null", "string"]}),
            _record({"name": "s", "type": "string"}),
            "old null",
        ),
        (
            _record({"name": "s", "type": "string"}),
            _record({"name": "s", "type": ["null", "int"]}),
            "no branch",
        ),
        (_record({"name": "t", "type": "long"}), _record({"name": "t", "type": "long"}), None),
        (
            _record({"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}}),
            _record({"name": "t", "type": {"type": "long", "logicalType": "timestamp-micros"}}),
            "logicalType changed",
        ),
        (
            _record({"name": "xs", "type": {"type": "array", "items": "int"}}),
            _record({"name": "xs", "type": {"type": "array", "items": "string"}}),
            "E.xs[]",
        ),
    ],
    ids=[
        "enum-append",
        "enum-insert-front",
        "enum-remove",
        "drop-null",
        "union-no-branch",
        "same",
        "logical-type",
        "array-items",
    ],
)
def test_compatibility_rules_for_enums_unions_and_nesting(old: Any, new: Any, problem: str | None) -> None:
    problems = check_backward_compatible(old, new)
    if problem is None:
        assert problems == []
    else:
        assert problems and problem in problems[0]


def test_every_schema_in_the_repo_can_read_all_its_older_versions() -> None:
    registry = default_registry()
    for name in registry.record_names:
        versions = registry.versions(name)
        for older in versions[:-1]:
            problems = check_backward_compatible(dict(older.schema), dict(versions[-1].schema))
            assert problems == [], f"{versions[-1].path.name} cannot read {older.path.name}: {problems}"
        assert [v.version for v in versions] == sorted({v.version for v in versions})


# --- topics ----------------------------------------------------------------------------------------


def test_topics_name_existing_records_that_carry_the_key() -> None:
    registry = default_registry()
    assert len({t.name for t in ALL_TOPICS}) == len(ALL_TOPICS)
    for topic in ALL_TOPICS:
        assert topic.record_names
        for name in topic.record_names:
            fields = {f["name"] for f in registry.latest(name).schema["fields"]}
            assert topic.key_field in fields, f"{name} on {topic.name} lacks key {topic.key_field}"
    assert ENGAGEMENT.record_names == ENGAGEMENT_RECORDS
    assert (ENGAGEMENT.name, ENGAGEMENT.key_field, ENGAGEMENT.partitions) == (
        "fyp.engagement.v1",
        "user_id",
        6,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "engagement", "key_field": "k", "partitions": 1}, "must look like"),
        ({"name": "fyp.x.v1", "key_field": "k", "partitions": 0}, "partitions"),
        ({"name": "fyp.x.v1", "key_field": "k", "partitions": 1, "cleanup": "forever"}, "cleanup"),
    ],
)
def test_topic_validates_itself(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Topic(**kwargs)


def test_recursive_schemas_fall_back_to_fastavro(tmp_path: Path) -> None:
    tree = {
        "type": "record",
        "name": "Tree",
        "namespace": NAMESPACE,
        "fields": [
            {"name": "schema_version", "type": "int", "default": 1},
            {"name": "label", "type": "string"},
            {"name": "children", "type": {"type": "array", "items": "Tree"}, "default": []},
        ],
    }
    (tmp_path / "Tree.avsc").write_text(json.dumps(tree))
    registry = SchemaRegistry.load(tmp_path)
    record = {"label": "root", "children": [{"label": "leaf", "children": []}]}
    payload = registry.encode("Tree", record)
    assert registry.decode(payload).record == {**record, "schema_version": 1, "children": [
        {"label": "leaf", "children": [], "schema_version": 1}
    ]}  # fmt: skip
    for bad, reason in ((payload[:-2], "truncated_body"), (payload + b"\x00", "corrupt_body")):
        with pytest.raises(UndecodableEvent) as caught:
            registry.decode(bad)
        assert caught.value.reason == reason
