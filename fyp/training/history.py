"""The engagement history as the backfill reads it: rows in Kafka order, and which of them the features job admitted.

The job decodes a partition's records in offset order, drops those more than the allowed lateness behind the
newest event time seen before them in their partition (udfs/lateness.py), then keeps the first copy of each
event_id (the dedup). `fyp verify` replays the same rules from the history's Kafka coordinates
(fyp.lake.history.late_flags, fyp.lake.verify `_select`): here they are computed for every row at once with numpy.

>>> from featurespec.reference.sql import engagement_row
>>> rows = [engagement_row(event_id=e, event_time=t) for e, t in (("a", 600_000), ("b", 300_000), ("a", 590_000))]
>>> history = History(rows=rows, partitions=np.zeros(3, np.int64), offsets=np.arange(3))
>>> history.admitted(allowed_lateness_ms=120_000).tolist()  # b is late, the second a is a copy
[True, False, False]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features import ALLOWED_LATENESS
from featurespec.reference.sql import COLUMN_INDEX, Row
from udfs.envelope import ENGAGEMENT_ROW_FIELDS

__all__ = ["ALLOWED_LATENESS_MS", "History", "history_from_arrow"]

ALLOWED_LATENESS_MS = int(ALLOWED_LATENESS.total_seconds() * 1000)
_EVENT_ID, _EVENT_TIME = COLUMN_INDEX["event_id"], COLUMN_INDEX["event_time"]


@dataclass(frozen=True, kw_only=True)
class History:
    """Engagement rows with their Kafka coordinates.

    rows: engagement rows (ENGAGEMENT_ROW_FIELDS order, event_time in epoch ms), in any order.
    partitions, offsets: each row's Kafka partition and offset (-1 where unknown: such rows sort first, as in
        fyp.lake.history).
    late: each row's lateness flag when the caller computed it over a fuller stream than `rows` (e.g. only some
        entities' rows were read: fyp.lake.history.read_history); None: replayed from `rows` themselves.
    """

    rows: Sequence[Row]
    partitions: np.ndarray
    offsets: np.ndarray
    late: np.ndarray | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.rows)
        if len(self.partitions) != n or len(self.offsets) != n or (self.late is not None and len(self.late) != n):
            raise ValueError("rows, partitions, offsets (and late) must have one entry per row")

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def event_times(self) -> np.ndarray:
        """Each row's event time, epoch ms (int64)."""
        if "times" not in self._cache:
            self._cache["times"] = np.fromiter((r[_EVENT_TIME] for r in self.rows), np.int64, len(self.rows))
        return self._cache["times"]

    @property
    def kafka_order(self) -> np.ndarray:
        """Row indexes in Kafka order: by partition, then offset (stable for rows without coordinates)."""
        if "order" not in self._cache:
            self._cache["order"] = np.lexsort((self.offsets, self.partitions))
        return self._cache["order"]

    def late_flags(self, allowed_lateness_ms: int = ALLOWED_LATENESS_MS) -> np.ndarray:
        """Rows more than `allowed_lateness_ms` behind the newest event time before them in their partition.

        The newest time is a running maximum over the partition's earlier rows (a late row never raises it, being
        below it); the job's wall-clock cap is not replayed, as in `fyp verify` (docs/ANALYSTS.md)."""
        if self.late is not None:
            return np.asarray(self.late, dtype=bool)
        order = self.kafka_order
        partitions, times = self.partitions[order], self.event_times[order]
        known = self.offsets[order] >= 0
        late_sorted = np.zeros(len(order), dtype=bool)
        starts = np.flatnonzero(np.r_[True, partitions[1:] != partitions[:-1]]) if len(order) else []
        ends = [*starts[1:], len(order)]
        for start, end in zip(starts, ends, strict=True):
            newest_before = np.maximum.accumulate(times[start:end])[:-1]
            late_sorted[start + 1:end] = times[start + 1:end] < newest_before - allowed_lateness_ms
        late = np.zeros(len(order), dtype=bool)
        late[order] = late_sorted & known
        return late

    def first_copies(self, among: np.ndarray | None = None) -> np.ndarray:
        """Rows that are the first of their event_id in Kafka order, among the rows where `among` holds."""
        first = np.zeros(len(self.rows), dtype=bool)
        seen: set[str] = set()
        rows = self.rows
        for i in self.kafka_order.tolist():
            if among is not None and not among[i]:
                continue
            event_id = rows[i][_EVENT_ID]
            if event_id not in seen:
                seen.add(event_id)
                first[i] = True
        return first

    def admitted(self, allowed_lateness_ms: int = ALLOWED_LATENESS_MS) -> np.ndarray:
        """Rows the features job folds: not late, and the first on-time copy of their event_id."""
        key = f"admitted:{allowed_lateness_ms}"
        if key not in self._cache:
            self._cache[key] = self.first_copies(~self.late_flags(allowed_lateness_ms))
        return self._cache[key]

    def distinct(self) -> np.ndarray:
        """The first copy of each event_id, late or not: what happened (spine rows and label events)."""
        if "distinct" not in self._cache:
            self._cache["distinct"] = self.first_copies()
        return self._cache["distinct"]


def history_from_arrow(arrow) -> History:
    """A History from a pyiceberg scan of the engagement history (event_time timestamptz, kafka_partition,
    kafka_offset), with repeated strings (ids, event types) shared rather than one object per row."""
    import pyarrow as pa

    n = arrow.num_rows
    columns: list[list[Any]] = []
    for name, _ in ENGAGEMENT_ROW_FIELDS:
        if name not in arrow.column_names:
            columns.append([None] * n)
        elif name == "event_time":
            micros = arrow.column(name).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
            columns.append((micros.to_numpy() // 1000).tolist())
        elif name in ("event_id", "hashtags") or not _is_text(arrow.column(name).type):
            columns.append(arrow.column(name).to_pylist())
        else:  # many rows, few distinct values: one str object per value
            encoded = arrow.column(name).combine_chunks().dictionary_encode()
            dictionary = encoded.dictionary.to_pylist()
            indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).tolist()
            columns.append([dictionary[i] if i >= 0 else None for i in indices])
    rows = list(zip(*columns, strict=True)) if n else []

    def coordinate(name: str) -> np.ndarray:
        if name not in arrow.column_names:
            return np.full(n, -1, dtype=np.int64)
        return arrow.column(name).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    return History(rows=rows, partitions=coordinate("kafka_partition"), offsets=coordinate("kafka_offset"))


def _is_text(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
