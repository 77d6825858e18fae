"""Every event schema in `schemas/avro`, addressed by fingerprint: encode and decode the wire format.

Wire format: Avro single-object encoding. A payload is the marker `C3 01`, the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then the Avro binary body.
The fingerprint tells a consumer the record type and the schema version. docs/EVENTS.md has the rules.

Files: `Watch.avsc` is the current schema of `fyp.events.Watch`; an older version, kept so that old data
stays readable, lives next to it as `Watch.v1.avsc`. A schema's version is the default of its
`schema_version` field. `decode` returns records in the shape of the current schema, whatever version
wrote them.
"""

from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.compat import check_backward_compatible
from schemas.decoder import UnsupportedSchema, compile_decoder

__all__ = [
    "EVENT_TYPES",
    "HEADER_SIZE",
    "MARKER",
    "NAMESPACE",
    "SCHEMA_DIR",
    "DecodedEvent",
    "RegisteredSchema",
    "SchemaError",
    "SchemaRegistry",
    "UndecodableEvent",
    "check_backward_compatible",
    "default_registry",
    "event_type_of",
]

MARKER = b"\xc3\x01"
HEADER_SIZE = 10  # marker (2 bytes) + fingerprint (8 bytes)
NAMESPACE = "fyp.events"
SCHEMA_DIR = Path(__file__).resolve().parent / "avro"

# Engagement event types, in the order docs and dashboards list them; all travel on fyp.engagement.v1.
EVENT_TYPES: tuple[str, ...] = (
    "impression",
    "watch",
    "loop",
    "skip",
    "like",
    "share",
    "save",
    "follow",
    "comment",
    "sound_engagement",
    "not_interested",
)

_FILE_NAME = re.compile(r"^(?P<name>[A-Z][A-Za-z0-9]*)(?:\.v(?P<version>[1-9][0-9]*))?\.avsc$")
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


class SchemaError(ValueError):
    """A schema file is invalid or inconsistent with the others; the message names the file."""


class UndecodableEvent(ValueError):
    """A payload is not a decodable event.

    `reason` is one of `too_short`, `bad_marker`, `unknown_fingerprint`, `truncated_body`,
    `corrupt_body`; `detail` says more, for logs.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def event_type_of(record_name: str) -> str:
    """snake_case event type of a record name: `SoundEngagement` -> `sound_engagement`."""
    return _CAMEL_BOUNDARY.sub("_", record_name.rpartition(".")[2]).lower()


@dataclass(frozen=True, kw_only=True)
class RegisteredSchema:
    """One schema file: a record name at one version, with its fingerprint."""

    record_name: str  # short name, e.g. "Watch"
    event_type: str  # snake_case record name, e.g. "sound_engagement"
    version: int
    fingerprint: bytes  # 8 bytes, little-endian CRC-64-AVRO of the Parsing Canonical Form
    schema: Mapping[str, Any]  # as read from the file
    path: Path

    @property
    def full_name(self) -> str:
        return f"{NAMESPACE}.{self.record_name}"

    @property
    def header(self) -> bytes:
        """The 10 bytes every payload written with this schema starts with."""
        return MARKER + self.fingerprint


@dataclass(frozen=True, kw_only=True, slots=True)
class DecodedEvent:
    """A decoded payload. `record` has the current schema's fields; `schema_version` is the writer's."""

    # Two fields, the rest derived: building a frozen dataclass costs per field, and decode is hot.
    writer: RegisteredSchema
    record: dict[str, Any]

    @property
    def record_name(self) -> str:
        return self.writer.record_name

    @property
    def event_type(self) -> str:
        return self.writer.event_type

    @property
    def schema_version(self) -> int:
        return self.writer.version


# decode() is hot: setting the two slots directly costs half of the frozen dataclass __init__.
_new_object = object.__new__
_set_writer = DecodedEvent.writer.__set__  # type: ignore[attr-defined]
_set_record = DecodedEvent.record.__set__  # type: ignore[attr-defined]


def _decoded(writer: RegisteredSchema, record: dict[str, Any]) -> DecodedEvent:
    event = _new_object(DecodedEvent)
    _set_writer(event, writer)
    _set_record(event, record)
    return event


def _strip_logical_types(schema: Any) -> Any:
    """Copy of `schema` without logicalType, so that fastavro returns epoch millis as int, not datetime."""
    if isinstance(schema, list):
        return [_strip_logical_types(s) for s in schema]
    if isinstance(schema, dict):
        return {k: _strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    return schema


def _load_file(path: Path) -> RegisteredSchema:
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise SchemaError(f"{path.name}: schema files are named <Record>.avsc or <Record>.v<N>.avsc")
    try:
        schema = json.loads(path.read_text())
        parsed = fastavro.parse_schema(schema)
    except (ValueError, fastavro.schema.SchemaParseException) as exc:
        raise SchemaError(f"{path.name}: {exc}") from exc
    name = match["name"]
    if schema.get("type") != "record" or schema.get("name") != name or schema.get("namespace") != NAMESPACE:
        raise SchemaError(f"{path.name}: must be a record named {name} in namespace {NAMESPACE}")
    field = next((f for f in schema["fields"] if f["name"] == "schema_version"), None)
    if field is None or field["type"] != "int" or not isinstance(field.get("default"), int):
        raise SchemaError(f"{path.name}: needs an int field schema_version whose default is the version")
    version = field["default"]
    if match["version"] is not None and int(match["version"]) != version:
        raise SchemaError(
            f"{path.name}: schema_version default is {version}, file name says {match['version']}"
        )
    canonical = to_parsing_canonical_form(parsed)
    return RegisteredSchema(
        record_name=name,
        event_type=event_type_of(name),
        version=version,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
        schema=schema,
        path=path,
    )


def _compiled_reader(schema: Mapping[str, Any]) -> Callable[[bytes, int], dict[str, Any]]:
    """A fast generated decoder; fastavro for what the generator does not handle."""
    try:
        return compile_decoder(dict(schema))
    except UnsupportedSchema:
        parsed = fastavro.parse_schema(_strip_logical_types(schema))

        def read(payload: bytes, pos: int) -> dict[str, Any]:
            body = io.BytesIO(payload)
            body.seek(pos)
            try:
                record = fastavro.schemaless_reader(body, parsed, None)
            except (EOFError, StopIteration) as exc:
                raise IndexError("read past the end") from exc
            if body.tell() != len(payload):
                raise ValueError("bytes left over after the record")
            return record

        return read


class SchemaRegistry:
    """Schemas by record name and version, and a reader per fingerprint.

    >>> registry = default_registry()
    >>> payload = registry.encode("Save", {"event_id": "e1", "event_time": 1_700_000_000_000,
    ...     "user_id": "u1", "video_id": "v1", "author_id": "a1", "region": "US", "language": "en",
    ...     "session_id": "s1"})
    >>> event = registry.decode(payload)
    >>> (event.event_type, event.schema_version, event.record["hashtags"])
    ('save', 1, [])
    """

    def __init__(self, schemas: Iterable[RegisteredSchema]) -> None:
        by_name: dict[str, dict[int, RegisteredSchema]] = {}
        by_fingerprint: dict[bytes, RegisteredSchema] = {}
        for entry in schemas:
            versions = by_name.setdefault(entry.record_name, {})
            if entry.version in versions:
                raise SchemaError(f"{entry.path.name} and {versions[entry.version].path.name}: same version")
            clash = by_fingerprint.get(entry.fingerprint)
            if clash is not None:
                raise SchemaError(
                    f"{entry.path.name} and {clash.path.name} have the same fingerprint: a new version must "
                    "change what is written (fields or types), not only defaults or docs"
                )
            versions[entry.version] = entry
            by_fingerprint[entry.fingerprint] = entry
        self._versions = {name: tuple(v[k] for k in sorted(v)) for name, v in sorted(by_name.items())}
        for name, versions in self._versions.items():
            latest = versions[-1]
            if latest.path.name != f"{name}.avsc":
                raise SchemaError(
                    f"{latest.path.name}: the newest version of {name} must live in {name}.avsc"
                )
        self._parsed = {e.fingerprint: fastavro.parse_schema(dict(e.schema)) for e in by_fingerprint.values()}
        # Everything decode needs, keyed by the 10-byte header so that one dict lookup finds it.
        self._readers: dict[bytes, tuple[RegisteredSchema, Callable[..., Any]]] = {
            e.header: (e, self._reader_for(e)) for e in by_fingerprint.values()
        }

    @classmethod
    def load(cls, directory: Path = SCHEMA_DIR) -> SchemaRegistry:
        """Load every `*.avsc` in `directory` (default: schemas/avro); raises SchemaError on a bad file."""
        paths = sorted(Path(directory).glob("*.avsc"))
        if not paths:
            raise SchemaError(f"no .avsc files in {directory}")
        return cls(_load_file(p) for p in paths)

    @property
    def record_names(self) -> tuple[str, ...]:
        return tuple(self._versions)

    def versions(self, record_name: str) -> tuple[RegisteredSchema, ...]:
        """All versions of a record, oldest first; `record_name` is short (`Watch`) or full."""
        try:
            return self._versions[record_name.removeprefix(f"{NAMESPACE}.")]
        except KeyError:
            raise KeyError(f"no schema for record {record_name!r}") from None

    def latest(self, record_name: str) -> RegisteredSchema:
        return self.versions(record_name)[-1]

    def by_fingerprint(self, fingerprint_: bytes) -> RegisteredSchema | None:
        entry = self._readers.get(MARKER + fingerprint_)
        return entry[0] if entry else None

    def _reader_for(self, entry: RegisteredSchema) -> Callable[[bytes, int], dict[str, Any]]:
        compiled = _compiled_reader(entry.schema)
        latest = self.latest(entry.record_name)
        if latest is entry:
            return compiled
        # Old version: decode it (which validates it), then let fastavro resolve it to the current schema.
        writer = fastavro.parse_schema(_strip_logical_types(entry.schema))
        reader = fastavro.parse_schema(_strip_logical_types(latest.schema))

        def read_old(payload: bytes, pos: int) -> dict[str, Any]:
            compiled(payload, pos)
            body = io.BytesIO(payload)
            body.seek(pos)
            return fastavro.schemaless_reader(body, writer, reader)

        return read_old

    def encode(self, record_name: str, record: Mapping[str, Any], *, version: int | None = None) -> bytes:
        """Single-object encoding of `record` with the current (or the given) version of `record_name`.

        Fields with defaults may be left out; `schema_version` is filled in, and must match if given.
        Raises KeyError for an unknown record or version, ValueError/TypeError for a record that does
        not fit the schema.
        """
        versions = self.versions(record_name)
        entry = versions[-1] if version is None else next((v for v in versions if v.version == version), None)
        if entry is None:
            raise KeyError(f"{record_name} has no version {version}")
        given = record.get("schema_version", entry.version)
        if given != entry.version:
            raise ValueError(
                f"record says schema_version={given} but is being encoded with version {entry.version}"
            )
        out = io.BytesIO()
        out.write(entry.header)
        fastavro.schemaless_writer(
            out,
            self._parsed[entry.fingerprint],
            {**record, "schema_version": entry.version},
            strict_allow_default=True,
        )
        return out.getvalue()

    def decode(self, payload: bytes) -> DecodedEvent:
        """Decode one single-object-encoded payload; raises UndecodableEvent (see its reasons)."""
        if type(payload) is not bytes:
            payload = bytes(payload)
        found = self._readers.get(payload[:HEADER_SIZE])
        if found is None:
            raise self._unknown(payload)
        entry, read = found
        try:
            return _decoded(entry, read(payload, HEADER_SIZE))
        except IndexError as exc:
            raise UndecodableEvent("truncated_body", f"{entry.record_name}: {exc}") from None
        except (ValueError, struct.error, TypeError, KeyError, OverflowError) as exc:
            raise UndecodableEvent("corrupt_body", f"{entry.record_name}: {exc}") from None

    def _unknown(self, payload: bytes) -> UndecodableEvent:
        if len(payload) < 2:
            return UndecodableEvent("too_short", f"{len(payload)} bytes")
        if payload[:2] != MARKER:
            return UndecodableEvent("bad_marker", payload[:2].hex())
        if len(payload) < HEADER_SIZE:
            return UndecodableEvent("too_short", f"{len(payload)} bytes")
        return UndecodableEvent("unknown_fingerprint", payload[2:HEADER_SIZE].hex())


@cache
def default_registry() -> SchemaRegistry:
    """The registry of `schemas/avro`, loaded once per process."""
    return SchemaRegistry.load()
