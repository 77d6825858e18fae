"""Upkeep of the Iceberg tables: compact small files, expire old snapshots, delete orphan files.

The Flink history job commits a few small files per partition on every checkpoint; left alone, reads plan and
open thousands of them. `maintain_table` runs three steps, in this order:

1. **Compaction.** In each partition, files below 3/4 of the target size are packed into bins of about the target
   size; each bin (two files or more) is read, sorted by the table's sort order, written as one file and swapped
   in by one atomic commit that deletes exactly the files read. Rows read, rows written and the commit's
   `added-records` / `deleted-records` must all agree, or nothing is committed.
2. **Snapshot expiry.** Snapshots older than `older_than` are dropped from the metadata, except the one that
   was current `older_than` ago (so any time in the window can still be read with `fyp sql --as-of`) and
   branch heads and tags. Their files are not deleted here: step 3 does that.
3. **Orphan files.** Objects under the table's location that no live snapshot and no kept metadata file refer
   to, and that are older than `older_than`, are deleted (they are what expiry and failed writes leave behind).

Concurrent writers: the Flink job may commit at any time. pyiceberg retries a commit that lost the race
(`CommitFailedException`, `commit.retry.num-retries`, 4 by default) after checking that the new snapshots do not
conflict with it; a compaction conflicts when files were added to its partition meanwhile, or its input files
are gone (`ValidationException`). Either way nothing was committed: the files it wrote are deleted and the bin is
planned again on the next pass (3 passes), then left for the next run. Files that a writer wrote but has not
committed yet look like orphans: `older_than` must exceed the longest checkpoint (1 hour by default).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from fyp.lake.compaction import CompactionReport, FileSet, compact

__all__ = [
    "ExpiryReport",
    "MaintenanceReport",
    "OrphanReport",
    "maintain_table",
    "parse_duration",
]

_KNOWN_SUFFIXES = (".parquet", ".avro", ".orc", ".puffin", ".metadata.json", ".metadata.json.gz")


def parse_duration(text: str) -> timedelta:
    """`1h`, `30m`, `45s`, `2d`, `1h30m`, `0s` as a timedelta; also Flink's `min` and `ms` (`2min`, `500ms`).

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_duration("2min")
    datetime.timedelta(seconds=120)
    """
    units = r"(ms|min|s|m|h|d)"
    normalized = text.strip().lower()
    parts = re.findall(rf"(\d+)\s*{units}", normalized)
    if not parts or re.sub(rf"[\s\d]+{units}", "", normalized):
        raise ValueError(f"{text!r} is not a duration like 45s, 30m, 1h, 2d or 1h30m")
    unit = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days"}
    return sum((timedelta(**{unit[u]: int(n)}) for n, u in parts), timedelta())


# ---------------------------------------------------------------------------------------------------------------
# Reports


@dataclass(frozen=True, kw_only=True)
class ExpiryReport:
    """Snapshots, and the files that live snapshots and kept metadata refer to, before and after expiry."""

    snapshots_before: int
    snapshots_after: int
    referenced_before: FileSet
    referenced_after: FileSet


@dataclass(frozen=True, kw_only=True)
class OrphanReport:
    """Objects under the table's location before and after, what was deleted, and orphans too young to go."""

    before: FileSet
    after: FileSet
    deleted: FileSet
    too_recent: int


@dataclass(frozen=True, kw_only=True)
class MaintenanceReport:
    table: str
    compaction: CompactionReport
    expiry: ExpiryReport
    orphans: OrphanReport
    elapsed_s: float = 0.0
    notes: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------------------------------------
# Snapshot expiry and orphan files


def _key(path: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// (or s3a://) path."""
    parsed = urlparse(path)
    return parsed.netloc, parsed.path.lstrip("/")


def referenced_files(table: Table) -> set[str]:
    """Every path that the table's metadata refers to: metadata files, manifest lists, manifests, data files."""
    metadata = table.metadata
    paths = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    paths |= {s.statistics_path for s in metadata.statistics}
    paths |= {s.statistics_path for s in metadata.partition_statistics}
    seen_manifests: set[str] = set()
    for snapshot in metadata.snapshots:
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                paths.add(entry.data_file.file_path)
    return paths | seen_manifests


@dataclass(frozen=True, kw_only=True)
class _Object:
    key: str
    size: int
    modified: datetime


def _list_objects(s3: Any, location: str) -> list[_Object]:
    bucket, prefix = _key(location.rstrip("/") + "/")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [_Object(key=o["Key"], size=o["Size"], modified=o["LastModified"]) for o in page.get("Contents", [])]
    return found


def _referenced_set(table: Table, objects: list[_Object]) -> FileSet:
    referenced = {_key(p)[1] for p in referenced_files(table)}
    return FileSet.of(o.size for o in objects if o.key in referenced)


def _retry_commit(table: Table, commit: Callable[[], None], attempts: int = 3) -> None:
    for attempt in range(attempts):
        try:
            commit()
            return
        except CommitFailedException:
            if attempt == attempts - 1:
                raise
            table.refresh()


def expire_snapshots(table: Table, s3: Any, *, older_than: timedelta, now: datetime | None = None) -> ExpiryReport:
    """Drop the snapshots that stopped being current more than `older_than` ago from the table's metadata."""
    now = now or datetime.now(UTC)
    objects = _list_objects(s3, table.location())
    snapshots_before, referenced_before = len(table.metadata.snapshots), _referenced_set(table, objects)
    cutoff_ms = int((now - older_than).timestamp() * 1000)

    def commit() -> None:
        # Keep the snapshot that was current at the cutoff: every moment of the window stays readable (--as-of),
        # and a reader that planned on it a moment ago still finds its files. So expire what is older than it.
        # (pyiceberg's `older_than` keeps branch heads and tags too, and builds the metadata once: `by_ids` builds
        # it twice per snapshot, minutes for a few hundred snapshots.)
        current_at_cutoff = table.snapshot_as_of_timestamp(cutoff_ms)
        until_ms = cutoff_ms if current_at_cutoff is None else min(cutoff_ms, current_at_cutoff.timestamp_ms)
        protected = {ref.snapshot_id for ref in table.metadata.refs.values()}  # branch heads and tags
        if any(s.timestamp_ms < until_ms and s.snapshot_id not in protected for s in table.metadata.snapshots):
            # Only then: an empty expiry would still write a metadata version.
            until = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=until_ms)  # exact, unlike floats
            table.maintenance.expire_snapshots().older_than(until).commit()

    _retry_commit(table, commit)
    table.refresh()
    return ExpiryReport(snapshots_before=snapshots_before, snapshots_after=len(table.metadata.snapshots),
                        referenced_before=referenced_before, referenced_after=_referenced_set(table, objects))


def remove_orphan_files(table: Table, s3: Any, *, older_than: timedelta, now: datetime | None = None) -> OrphanReport:
    """Delete objects under the table's location that nothing refers to and that are older than `older_than`."""
    now = now or datetime.now(UTC)
    bucket, _ = _key(table.location())
    objects = _list_objects(s3, table.location())
    table.refresh()  # after listing: anything committed since the listing is referenced, or younger than it
    referenced = {_key(p)[1] for p in referenced_files(table)}
    orphans = [o for o in objects if o.key not in referenced and o.key.endswith(_KNOWN_SUFFIXES)]
    old_enough = [o for o in orphans if o.modified <= now - older_than]
    for start in range(0, len(old_enough), 1000):
        batch = old_enough[start:start + 1000]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o.key} for o in batch],
                                                             "Quiet": True})
        if response.get("Errors"):
            raise RuntimeError(f"could not delete {len(response['Errors'])} orphan files: {response['Errors'][:3]}")
    return OrphanReport(before=FileSet.of(o.size for o in objects),
                        after=FileSet.of(o.size for o in _list_objects(s3, table.location())),
                        deleted=FileSet.of(o.size for o in old_enough), too_recent=len(orphans) - len(old_enough))


def maintain_table(table: Table, s3: Any, *, older_than: timedelta, target_bytes: int,
                   name: str | None = None) -> MaintenanceReport:
    """Compaction, then snapshot expiry, then orphan cleanup, on one table (see the module docstring)."""
    started = datetime.now(UTC)
    compaction = compact(table, target_bytes=target_bytes)
    expiry = expire_snapshots(table, s3, older_than=older_than)
    orphans = remove_orphan_files(table, s3, older_than=older_than)
    return MaintenanceReport(
        table=name or ".".join(table.name()[-2:]), compaction=compaction, expiry=expiry, orphans=orphans,
        elapsed_s=(datetime.now(UTC) - started).total_seconds(),
    )
