"""Compaction of an Iceberg table: pack each partition's small files into files of about the target size.

Each bin (two files or more) is read, sorted by the table's sort order, written as one file and swapped in by one
atomic commit that deletes exactly the files read. Rows read, rows written and the commit's `added-records` /
`deleted-records` must all agree, or nothing is committed. A commit that loses a race with the Flink writer
(`ValidationException`) commits nothing: the files it wrote are deleted and the bin is planned again on the next
pass. `fyp.lake.maintenance` runs it first of its three steps.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    IsNull,
    LessThan,
)
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.sorting import SortDirection
from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform, MonthTransform, YearTransform
from pyiceberg.types import DateType, TimestampType, TimestamptzType

__all__ = ["CompactionReport", "FileSet", "compact", "partition_filter", "plan_bins"]

log = logging.getLogger(__name__)

SMALL_FILE_RATIO = 0.75  # a file below this share of the target size is "small"
COMPACTION_PASSES = 3
F = TypeVar("F")


@dataclass(frozen=True, kw_only=True)
class FileSet:
    files: int
    bytes: int

    @staticmethod
    def of(sizes: Iterable[int]) -> FileSet:
        sizes = list(sizes)
        return FileSet(files=len(sizes), bytes=sum(sizes))


@dataclass(frozen=True, kw_only=True)
class CompactionReport:
    """Live data files of the current snapshot before and after; rows rewritten; bins left for later."""

    before: FileSet
    after: FileSet
    rows_before: int  # the table's total-records: concurrent appends can raise it in between
    rows_after: int
    bins_rewritten: int
    files_rewritten: int
    files_written: int
    rows_rewritten: int
    conflicts: int
    skipped: tuple[str, ...] = ()



def plan_bins(files: Iterable[F], *, size: Callable[[F], int], group: Callable[[F], Any], target_bytes: int,
              min_files: int = 2) -> list[list[F]]:
    """Pack each group's small files (below 3/4 of `target_bytes`) into bins of at most `target_bytes`.

    Bins of fewer than `min_files` files are dropped (rewriting one file gains nothing).

    >>> sizes = [10, 10, 10, 500, 60, 60]
    >>> plan_bins(sizes, size=lambda s: s, group=lambda s: "p", target_bytes=100)
    [[10, 10, 10, 60]]
    """
    if target_bytes <= 0:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    groups: dict[Any, list[F]] = {}
    for item in files:
        if size(item) < SMALL_FILE_RATIO * target_bytes:
            groups.setdefault(group(item), []).append(item)
    bins: list[list[F]] = []
    for members in groups.values():
        current: list[F] = []
        filled = 0
        for item in sorted(members, key=size):
            if current and filled + size(item) > target_bytes:
                bins.append(current)
                current, filled = [], 0
            current.append(item)
            filled += size(item)
        bins.append(current)
    return [b for b in bins if len(b) >= min_files]


def _time_bounds(transform: Any, value: int) -> tuple[datetime, datetime] | None:
    epoch = datetime(1970, 1, 1)
    if isinstance(transform, HourTransform):
        start = epoch + timedelta(hours=value)
        return start, start + timedelta(hours=1)
    if isinstance(transform, DayTransform):
        start = epoch + timedelta(days=value)
        return start, start + timedelta(days=1)
    if isinstance(transform, MonthTransform | YearTransform):
        months = value if isinstance(transform, MonthTransform) else value * 12
        step = 1 if isinstance(transform, MonthTransform) else 12
        start = datetime(1970 + months // 12, months % 12 + 1, 1)
        end_months = months + step
        return start, datetime(1970 + end_months // 12, end_months % 12 + 1, 1)
    return None


def partition_filter(spec: PartitionSpec, schema: Schema, partition: Sequence[Any]) -> BooleanExpression:
    """A row filter matching one partition (identity, hour/day/month/year fields); AlwaysTrue for other fields.

    Used as the conflict filter of a compaction commit: a concurrent append to this partition is a conflict.

    >>> from pyiceberg.partitioning import PartitionField
    >>> from pyiceberg.types import NestedField, StringType
    >>> s = Schema(NestedField(1, "t", TimestamptzType()), NestedField(2, "k", StringType()))
    >>> p = PartitionSpec(PartitionField(1, 1000, DayTransform(), "d"),
    ...                   PartitionField(2, 1001, IdentityTransform(), "k"))
    >>> print(partition_filter(p, s, [1, "like"]))  # doctest: +NORMALIZE_WHITESPACE
    And(left=And(left=GreaterThanOrEqual(term=Reference(name='t'), literal=literal('1970-01-02T00:00:00+00:00')),
        right=LessThan(term=Reference(name='t'), literal=literal('1970-01-03T00:00:00+00:00'))),
        right=EqualTo(term=Reference(name='k'), literal=literal('like')))
    """
    found: BooleanExpression = AlwaysTrue()
    for position, spec_field in enumerate(spec.fields):
        source = schema.find_field(spec_field.source_id)
        value = partition[position]
        predicate: BooleanExpression | None = None
        if isinstance(spec_field.transform, IdentityTransform):
            predicate = IsNull(source.name) if value is None else EqualTo(source.name, value)
        elif value is not None and (bounds := _time_bounds(spec_field.transform, value)) is not None:
            start, end = bounds
            if isinstance(source.field_type, TimestamptzType):
                low, high = (t.replace(tzinfo=UTC).isoformat() for t in (start, end))
            elif isinstance(source.field_type, TimestampType):
                low, high = start.isoformat(), end.isoformat()
            elif isinstance(source.field_type, DateType) and not isinstance(spec_field.transform, HourTransform):
                low, high = (date.isoformat(t.date()) for t in (start, end))
            else:
                continue
            predicate = And(GreaterThanOrEqual(source.name, low), LessThan(source.name, high))
        if predicate is not None:
            found = predicate if isinstance(found, AlwaysTrue) else And(found, predicate)
    return found


def _summary_int(table: Table, key: str) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get(key, 0) or 0)


def _live_data_files(table: Table) -> FileSet:
    return FileSet(files=_summary_int(table, "total-data-files"), bytes=_summary_int(table, "total-files-size"))


def _sorted(table: Table, rows: Any) -> Any:
    keys = []
    for sort_field in table.sort_order().fields:
        if isinstance(sort_field.transform, IdentityTransform):
            name = table.schema().find_field(sort_field.source_id).name
            keys.append((name, "ascending" if sort_field.direction == SortDirection.ASC else "descending"))
    return rows.sort_by(keys) if keys and rows.num_rows else rows


def _rewrite_bin(table: Table, tasks: list[FileScanTask]) -> tuple[int, int]:
    """Replace the bin's files by one file per partition in one commit; returns (files written, rows)."""
    old = [t.file for t in tasks]
    expected = sum(f.record_count for f in old)
    rows = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue(), True).to_table(tasks)
    if rows.num_rows != expected:
        raise RuntimeError(f"read {rows.num_rows} rows from files that hold {expected}: not compacting them")
    # pyiceberg splits output by in-memory Arrow bytes; the bin is already about the target size on disk.
    unsplit = table.metadata.model_copy(
        update={"properties": {**table.metadata.properties, "write.target-file-size-bytes": str(2**62)}})
    new = list(_dataframe_to_data_files(table_metadata=unsplit, df=_sorted(table, rows), io=table.io))
    try:
        if sum(f.record_count for f in new) != expected:
            raise RuntimeError(f"wrote {sum(f.record_count for f in new)} rows for {expected}: not committing")
        rewrite_id = str(uuid.uuid4())
        spec = table.specs()[old[0].spec_id]
        with table.transaction() as tx, tx.update_snapshot(
            snapshot_properties={"fyp.maintenance": "compaction", "fyp.rewrite-id": rewrite_id}
        ).overwrite() as rewrite:
            rewrite.delete_by_predicate(partition_filter(spec, table.schema(), old[0].partition))
            for data_file in old:
                rewrite.delete_data_file(data_file)
            for data_file in new:
                rewrite.append_data_file(data_file)
    except (CommitFailedException, ValidationException, RuntimeError):
        _delete_quietly(table, new)  # certainly not committed: these files would only be orphans
        raise
    _check_rewrite_commit(table, rewrite_id, expected)
    return len(new), expected


def _check_rewrite_commit(table: Table, rewrite_id: str, expected: int) -> None:
    table.refresh()
    for snapshot in reversed(table.metadata.snapshots):
        props = snapshot.summary.additional_properties if snapshot.summary else {}
        if props.get("fyp.rewrite-id") == rewrite_id:
            added, deleted = int(props.get("added-records", -1)), int(props.get("deleted-records", -1))
            if added != expected or deleted != expected:
                raise RuntimeError(
                    f"compaction snapshot {snapshot.snapshot_id} added {added} and deleted {deleted} rows, "
                    f"expected {expected} each: inspect it and roll back with manage_snapshots()")
            return
    raise RuntimeError(f"compaction commit {rewrite_id} is not in the table's snapshots")


def _delete_quietly(table: Table, files: Iterable[DataFile]) -> None:
    for data_file in files:
        try:
            table.io.delete(data_file.file_path)
        except Exception:  # left for orphan cleanup
            log.warning("could not delete %s; orphan cleanup will", data_file.file_path)


def compact(table: Table, *, target_bytes: int) -> CompactionReport:
    """Rewrite each partition's small files into files of about `target_bytes`, one atomic commit per bin."""
    before, rows_before = _live_data_files(table), _summary_int(table, "total-records")
    current_spec = table.spec().spec_id
    bins_done = files_rewritten = files_written = rows_rewritten = conflicts = 0
    skipped: list[str] = []
    for _ in range(COMPACTION_PASSES):
        table.refresh()
        if table.current_snapshot() is None:
            break
        tasks = [t for t in table.scan().plan_files()]
        with_deletes = [t for t in tasks if t.delete_files]
        if with_deletes:
            skipped.append(f"{len(with_deletes)} files with delete files (not compacted)")
        candidates = [t for t in tasks if not t.delete_files and t.file.spec_id == current_spec]
        bins = plan_bins(candidates, size=lambda t: t.file.file_size_in_bytes,
                         group=lambda t: (t.file.spec_id, t.file.partition), target_bytes=target_bytes)
        if not bins:
            break
        conflicted = 0
        for tasks_in_bin in bins:
            try:
                written, rows = _rewrite_bin(table, tasks_in_bin)
            except (CommitFailedException, ValidationException) as exc:
                conflicted += 1
                log.info("compaction of %s conflicted (%s); planning again", tasks_in_bin[0].file.partition, exc)
                table.refresh()
                continue
            bins_done += 1
            files_rewritten += len(tasks_in_bin)
            files_written += written
            rows_rewritten += rows
        conflicts += conflicted
        if not conflicted:
            break
    else:
        skipped.append(f"bins still conflicting after {COMPACTION_PASSES} passes: left for the next run")
    table.refresh()
    return CompactionReport(
        before=before, after=_live_data_files(table), rows_before=rows_before,
        rows_after=_summary_int(table, "total-records"), bins_rewritten=bins_done, files_rewritten=files_rewritten,
        files_written=files_written, rows_rewritten=rows_rewritten, conflicts=conflicts, skipped=tuple(skipped),
    )
