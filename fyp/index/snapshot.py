"""Index snapshots in S3, with the Kafka offsets they contain, so a restart replays only what came after.

Layout under the bucket (see docs/INDEX.md):

    index-snapshots/{name}/{timestamp}/manifest.json    what the snapshot holds, with sizes and SHA-256s
    index-snapshots/{name}/{timestamp}/<index files>    whatever the index's `save` wrote (flat)
    index-snapshots/{name}/_latest                      {"prefix": "index-snapshots/{name}/{timestamp}/"}

The pointer is written last, after every file and the manifest: a reader that follows it never sees a
half-written snapshot, and a crash mid-upload leaves the previous pointer in place. Timestamps sort as text.

Offsets are the *next* offset to read per partition (Kafka's committed-offset convention): the snapshot holds
every record before them and none after.

>>> snapshot_prefix("videos", datetime(2026, 11, 24, 9, 30, 5, 123000, tzinfo=UTC))
'index-snapshots/videos/20261124T093005.123Z/'
>>> tracker = OffsetTracker()
>>> tracker.advance(0, 41); tracker.advance(0, 7); tracker.advance(2, 0)
>>> tracker.next_offsets()
{0: 42, 2: 1}
>>> start_offsets({0: 42, 2: 1}, partitions=[0, 1, 2])
{0: 42, 1: -2, 2: 1}
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from connectors.s3_objects import S3ObjectStore

__all__ = [
    "OFFSET_BEGINNING",
    "ROOT",
    "LocalObjectStore",
    "ObjectStore",
    "OffsetTracker",
    "S3ObjectStore",
    "SnapshotFile",
    "SnapshotManifest",
    "SnapshotStore",
    "latest_key",
    "snapshot_prefix",
    "start_offsets",
]

log = logging.getLogger("fyp.index.snapshot")

ROOT = "index-snapshots"
MANIFEST = "manifest.json"
LATEST = "_latest"
OFFSET_BEGINNING = -2  # librdkafka's OFFSET_BEGINNING: a partition the snapshot never read starts at its start
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_STAMP = re.compile(r"^\d{8}T\d{6}\.\d{3}Z$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"snapshot name {name!r}: lower-case letters, digits, '.', '_', '-' (at most 63)")
    return name


def snapshot_prefix(name: str, taken_at: datetime) -> str:
    """Key prefix (ending in '/') of the snapshot of index `name` taken at `taken_at` (made UTC)."""
    when = taken_at.astimezone(UTC)
    return f"{ROOT}/{validate_name(name)}/{when:%Y%m%dT%H%M%S}.{when.microsecond // 1000:03d}Z/"


def latest_key(name: str) -> str:
    """Key of the pointer to the newest complete snapshot of index `name`."""
    return f"{ROOT}/{validate_name(name)}/{LATEST}"


class OffsetTracker:
    """Next offset to read per partition, advanced as records are applied."""

    def __init__(self, offsets: Mapping[int, int] | None = None) -> None:
        self._next: dict[int, int] = dict(offsets or {})

    def advance(self, partition: int, offset: int) -> None:
        """Record that the record at `offset` of `partition` is applied (never moves backwards)."""
        if offset + 1 > self._next.get(partition, 0):
            self._next[partition] = offset + 1

    def next_offsets(self) -> dict[int, int]:
        return dict(sorted(self._next.items()))


def start_offsets(saved: Mapping[int, int], partitions: Iterable[int]) -> dict[int, int]:
    """Where to start reading each partition: the saved next offset, or the beginning for a partition the
    snapshot does not know (new partition, or no snapshot at all)."""
    return {p: saved.get(p, OFFSET_BEGINNING) for p in sorted(partitions)}


@dataclass(frozen=True, kw_only=True)
class SnapshotFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class SnapshotManifest:
    """What one snapshot holds. `offsets` maps partition -> next offset to read of `topic`. `model`: the embedding
    model of its vectors (None in snapshots taken before the manifest named it: the service refuses those)."""

    name: str
    prefix: str
    taken_at_ms: int
    topic: str
    offsets: dict[int, int]
    kind: str
    dim: int
    size: int
    files: tuple[SnapshotFile, ...]
    model: str | None = None
    format_version: int = 1

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": self.format_version,
                "name": self.name,
                "prefix": self.prefix,
                "taken_at_ms": self.taken_at_ms,
                "topic": self.topic,
                "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
                "kind": self.kind,
                "dim": self.dim,
                "size": self.size,
                **({"model": self.model} if self.model is not None else {}),
                "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SnapshotManifest:
        raw = json.loads(text)
        if raw.get("format_version") != 1:
            raise ValueError(f"snapshot manifest format {raw.get('format_version')!r} is not 1")
        files = tuple(SnapshotFile(name=f["name"], size=int(f["size"]), sha256=f["sha256"]) for f in raw["files"])
        for f in files:
            if not _FILE.match(f.name) or f.name == MANIFEST:
                raise ValueError(f"snapshot manifest lists a bad file name {f.name!r}")
        return cls(
            name=raw["name"],
            prefix=raw["prefix"],
            taken_at_ms=int(raw["taken_at_ms"]),
            topic=raw["topic"],
            offsets={int(p): int(o) for p, o in raw["offsets"].items()},
            kind=raw["kind"],
            dim=int(raw["dim"]),
            size=int(raw["size"]),
            files=files,
            model=raw.get("model"),
        )


class ObjectStore(Protocol):
    """The object-store calls snapshots need."""

    def put_file(self, key: str, path: Path) -> None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes | None: ...

    def download(self, key: str, path: Path) -> None: ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def delete(self, keys: Sequence[str]) -> None: ...


class LocalObjectStore:
    """`ObjectStore` in a local directory: tests, and running without S3."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} leaves the store")
        return path

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def get_bytes(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def download(self, key: str, path: Path) -> None:
        shutil.copyfile(self._path(key), path)

    def list_keys(self, prefix: str) -> Iterator[str]:
        if not self.root.exists():
            return
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix):
                yield key

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SnapshotStore:
    """Save, find, restore and prune the snapshots of one named index."""

    def __init__(self, store: ObjectStore, name: str, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.name = validate_name(name)
        self._clock = clock

    def save_directory(
        self, directory: Path, *, topic: str, offsets: Mapping[int, int], kind: str, dim: int, size: int,
        model: str | None = None,
    ) -> SnapshotManifest:
        """Upload the files of a saved index (a flat directory), the manifest, then move the pointer."""
        now_ms = int(self._clock() * 1000)
        prefix = snapshot_prefix(self.name, datetime.fromtimestamp(now_ms / 1000, UTC))
        files = []
        for path in sorted(Path(directory).iterdir()):
            if not path.is_file() or not _FILE.match(path.name) or path.name == MANIFEST:
                raise ValueError(f"{path}: snapshots hold flat files with plain names")
            files.append(SnapshotFile(name=path.name, size=path.stat().st_size, sha256=_sha256(path)))
            self.store.put_file(prefix + path.name, path)
        manifest = SnapshotManifest(
            name=self.name,
            prefix=prefix,
            taken_at_ms=now_ms,
            topic=topic,
            offsets=dict(offsets),
            kind=kind,
            dim=dim,
            size=size,
            files=tuple(files),
            model=model,
        )
        self.store.put_bytes(prefix + MANIFEST, manifest.to_json().encode())
        self.store.put_bytes(latest_key(self.name), json.dumps({"prefix": prefix}).encode())
        return manifest

    def latest(self) -> SnapshotManifest | None:
        """The manifest the pointer names, or None when there is no snapshot yet."""
        pointer = self.store.get_bytes(latest_key(self.name))
        if pointer is None:
            return None
        prefix = json.loads(pointer)["prefix"]
        if not (prefix.startswith(f"{ROOT}/{self.name}/") and _STAMP.match(prefix.rstrip("/").rpartition("/")[2])):
            raise ValueError(f"{latest_key(self.name)} points at {prefix!r}, not a snapshot of {self.name}")
        raw = self.store.get_bytes(prefix + MANIFEST)
        if raw is None:
            raise ValueError(f"{latest_key(self.name)} points at {prefix}, which has no {MANIFEST}")
        manifest = SnapshotManifest.from_json(raw)
        if manifest.prefix != prefix or manifest.name != self.name:
            raise ValueError(f"{prefix}{MANIFEST} describes {manifest.prefix}, not itself")
        return manifest

    @contextmanager
    def fetched(self, manifest: SnapshotManifest) -> Iterator[Path]:
        """Download a snapshot's files into a temporary directory, checking sizes and hashes."""
        with tempfile.TemporaryDirectory(prefix="fyp-index-") as tmp:
            directory = Path(tmp)
            for f in manifest.files:
                path = directory / f.name
                self.store.download(manifest.prefix + f.name, path)
                if path.stat().st_size != f.size or _sha256(path) != f.sha256:
                    raise ValueError(f"{manifest.prefix}{f.name} does not match its manifest entry")
            yield directory

    def snapshots(self) -> list[str]:
        """Prefixes of every snapshot of this index (complete or not), oldest first."""
        prefixes = set()
        for key in self.store.list_keys(f"{ROOT}/{self.name}/"):
            stamp = key[len(f"{ROOT}/{self.name}/") :].partition("/")[0]
            if _STAMP.match(stamp):
                prefixes.add(f"{ROOT}/{self.name}/{stamp}/")
        return sorted(prefixes)

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest `keep` snapshots; the one the pointer names always stays."""
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        pointer = self.store.get_bytes(latest_key(self.name))
        current = json.loads(pointer)["prefix"] if pointer else None
        doomed = [p for p in self.snapshots()[:-keep] if p != current]
        for prefix in doomed:
            self.store.delete(list(self.store.list_keys(prefix)))
        return doomed
