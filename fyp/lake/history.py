"""Reading the engagement history for verification and the restore: one feature set's entities, their rows with
Kafka coordinates, and which rows the job's lateness rule would have dropped (the Iceberg side of `fyp verify`)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features import ALLOWED_LATENESS
from featurespec import FeatureSet
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import COLUMN_INDEX
from udfs.envelope import ENGAGEMENT_COLUMNS, ENGAGEMENT_ROW_FIELDS
from udfs.lateness import LatenessGate

__all__ = ["HistoryEvent", "engagement_rows", "iso_utc", "late_flags", "read_history", "sample", "sample_ids",
           "split_id"]

_EVENT_TIME = COLUMN_INDEX["event_time"]
_NO_POSITION = (-1, -1)  # rows without Kafka coordinates (written by other tools) sort first


@dataclass(frozen=True, kw_only=True)
class HistoryEvent:
    """One history row: the engagement row (ENGAGEMENT_ROW_FIELDS order, event_time in ms), where it was in
    Kafka, and whether the job's lateness rule would have dropped it (see `late_flags`)."""

    row: tuple[Any, ...]
    partition: int | None = None
    offset: int | None = None
    late: bool = False

    @property
    def position(self) -> tuple[int, int]:
        if self.partition is None or self.offset is None:
            return _NO_POSITION
        return (self.partition, self.offset)


def late_flags(
    stream: Mapping[int, tuple[np.ndarray, np.ndarray]], rows: Sequence[tuple[int | None, int | None, int]],
    allowed_lateness_ms: int = int(ALLOWED_LATENESS.total_seconds() * 1000),
) -> list[bool]:
    """Which of `rows` (partition, offset, event_time_ms) trail an earlier row of their Kafka partition by more
    than the allowed lateness, the rule the job's decoder applies (udfs.flink_functions.DecodeEngagement).

    stream: per partition, (offsets, event times) of the partition's rows, in any order; rows older than the
    oldest of `rows` plus the allowed lateness cannot make any of them late and may be left out. The job
    forgets its newest times on a restart (they are not in its state): docs/ANALYSTS.md.

    >>> stream = {0: (np.array([0, 1, 2]), np.array([300_000, 10_000, 299_000]))}
    >>> late_flags(stream, [(0, 1, 10_000), (0, 2, 299_000), (0, 0, 300_000)])
    [True, False, False]
    """
    wanted: dict[int, dict[int, int]] = defaultdict(dict)  # partition -> offset -> event time
    for partition, offset, event_time in rows:
        if partition is not None and offset is not None:
            wanted[partition][offset] = event_time
    admitted: dict[tuple[int, int], bool] = {}
    for partition, offsets_at in wanted.items():
        offsets, times = stream.get(partition, (np.empty(0, np.int64), np.empty(0, np.int64)))
        merged = {**dict(zip(offsets.tolist(), times.tolist(), strict=True)), **offsets_at}
        gate = LatenessGate(allowed_lateness_ms)  # the job's own rule, replayed in the partition's order
        for offset in sorted(merged):
            ok = gate.admit(partition, merged[offset])
            if offset in offsets_at:
                admitted[(partition, offset)] = ok
    return [not admitted.get((p, o), True) for p, o, _ in rows]


def sample(keys: Iterable[str], n: int, seed: int) -> list[str]:
    """`n` distinct keys chosen at random (reproducibly for a seed), sorted."""
    distinct = sorted(set(keys))
    return sorted(random.Random(seed).sample(distinct, min(n, len(distinct))))


def split_id(feature_set: FeatureSet, entity_id: str) -> tuple[str, ...]:
    """`u1:a7` -> ("u1", "a7") for a two-column entity; a one-column id is taken whole."""
    keys = feature_set.entity.key_columns
    parts = tuple(entity_id.split(":", len(keys) - 1)) if len(keys) > 1 else (entity_id,)
    if len(parts) != len(keys) or not all(parts):
        raise ValueError(f"{feature_set.entity.name} ids are {':'.join(keys)}, got {entity_id!r}")
    return parts


def iso_utc(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def engagement_rows(arrow) -> list[tuple[int | None, int | None, tuple[Any, ...]]]:
    """(partition, offset, engagement row) per history row; event_time to epoch ms, `error` None."""
    import pyarrow as pa

    lists = {name: arrow.column(name).to_pylist() for name in arrow.column_names if name != "event_time"}
    if "event_time" in arrow.column_names:
        micros = arrow.column("event_time").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
        lists["event_time"] = (micros // 1000).tolist()
    none = [None] * arrow.num_rows
    values = [lists.get(name, none) for name, _ in ENGAGEMENT_ROW_FIELDS]
    partitions, offsets = lists.get("kafka_partition", none), lists.get("kafka_offset", none)
    return [(p, o, row) for p, o, row in zip(partitions, offsets, zip(*values, strict=True), strict=True)]


def _key_filter(feature_set: FeatureSet, ids: Sequence[str]):
    from pyiceberg.expressions import AlwaysTrue, And, In

    expression = AlwaysTrue()
    parts = [split_id(feature_set, i) for i in ids]
    for position, column in enumerate(feature_set.entity.key_columns):
        if column != "hashtag":  # not a column: the row's `hashtags` holds it
            expression = And(expression, In(column, {p[position] for p in parts}))
    return expression


def read_history(table, feature_set: FeatureSet, ids: Sequence[str], *,
                 allowed_lateness_ms: int = int(ALLOWED_LATENESS.total_seconds() * 1000),
                 ) -> dict[str, list[HistoryEvent]]:
    """The history rows of each entity in `ids`, with their lateness flags (one scan for the rows, one for
    the Kafka partitions' event times that could make them late)."""
    from pyiceberg.expressions import GreaterThan

    evaluator = FeatureEvaluator.of(feature_set)
    arrow = table.scan(row_filter=_key_filter(feature_set, ids),
                       selected_fields=(*ENGAGEMENT_COLUMNS, "kafka_partition", "kafka_offset")).to_arrow()
    rows = engagement_rows(arrow)
    flags = [False] * len(rows)
    if rows:
        oldest = min(row[_EVENT_TIME] for _, _, row in rows)
        stream_rows = table.scan(row_filter=GreaterThan("event_time", iso_utc(oldest + allowed_lateness_ms)),
                                 selected_fields=("kafka_partition", "kafka_offset", "event_time")).to_arrow()
        stream: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for partition, offset, row in engagement_rows(stream_rows):
            if partition is not None and offset is not None:
                stream.setdefault(partition, ([], []))
                stream[partition][0].append(offset)
                stream[partition][1].append(row[_EVENT_TIME])
        arrays = {p: (np.asarray(o, dtype=np.int64), np.asarray(t, dtype=np.int64)) for p, (o, t) in stream.items()}
        flags = late_flags(arrays, [(p, o, row[_EVENT_TIME]) for p, o, row in rows], allowed_lateness_ms)
    wanted = set(ids)
    found: dict[str, list[HistoryEvent]] = {i: [] for i in ids}
    for (partition, offset, row), late in zip(rows, flags, strict=True):
        event = HistoryEvent(row=row, partition=partition, offset=offset, late=late)
        for key in set(evaluator.keys(row)) & wanted:
            found[key].append(event)
    return found


def sample_ids(table, feature_set: FeatureSet, n: int, *, seed: int = 0, since_ms: int | None = None) -> list[str]:
    """`n` entity ids drawn at random from the history (rows at or after `since_ms`, if given)."""
    from pyiceberg.expressions import AlwaysTrue, GreaterThanOrEqual

    evaluator = FeatureEvaluator.of(feature_set)
    needed = {"hashtags" if k == "hashtag" else k for k in feature_set.entity.key_columns}
    filtered = feature_set.where or feature_set.counted_where
    fields = ENGAGEMENT_COLUMNS if filtered else tuple(c for c in ENGAGEMENT_COLUMNS if c in needed)
    row_filter = GreaterThanOrEqual("event_time", iso_utc(since_ms)) if since_ms is not None else AlwaysTrue()
    arrow = table.scan(row_filter=row_filter, selected_fields=fields).to_arrow()
    return sample((key for _, _, row in engagement_rows(arrow) for key in evaluator.keys(row)), n, seed)
