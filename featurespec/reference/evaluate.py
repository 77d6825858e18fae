"""A feature set evaluated in plain Python: engagement row -> entity key and per-column accumulators -> the
packed Redis value (docs/REDIS_LAYOUT.md), as the Flink features job computes it (featurespec/sql.py).
`fyp verify features` (fyp.lake.verify, recomputing Redis from the Iceberg history), the Redis restore
(fyp.lake.restore) and the benchmark peers share it.

Compiled once per feature set: each aggregation's `value_sql()` (the exact SQL the job sums) becomes a Python
function (featurespec.reference.sql), and each column gets a SLIDING_SUM or DECAYED_SUM
(featurespec.reference.aggregates) over its own slice of the entity's state array. Like the job, each column
is its own aggregate, as of the newest row it accepted; a row whose value is NULL or not finite is ignored.
`value_sql()` gives 0.0 (not NULL) outside an aggregation's `where`, so every column sees every row and is as
of the entity's MAX(event_time), which the value's header carries.

>>> from features.engagement.video_engagement import v1
>>> from featurespec.reference.sql import engagement_row
>>> evaluator = FeatureEvaluator.of(v1)
>>> state = evaluator.new_state()
>>> row = engagement_row(event_type="watch", event_time=1_000, video_id="v1", watch_ms=3_000,
...                      video_duration_ms=10_000)
>>> evaluator.key(row)
'v1'
>>> evaluator.update(state, row)
>>> values = evaluator.values(state)
>>> values["plays_1m"], values["watch_ms_24h"], values["likes_1m"]
(1.0, 3000.0, 0.0)
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from featurespec.declaration import FeatureSet
from featurespec.reference.aggregates import EMPTY, DecayedSum, SlidingSum
from featurespec.reference.sql import COLUMN_INDEX, compile_predicate, compile_value

__all__ = ["FeatureEvaluator"]

Row = tuple[Any, ...]
_EVENT_TIME = COLUMN_INDEX["event_time"]
_HASHTAGS = COLUMN_INDEX["hashtags"]
_LITTLE_ENDIAN = sys.byteorder == "little"


@dataclass(frozen=True, kw_only=True)
class _Column:
    name: str
    aggregator: SlidingSum | DecayedSum
    offset: int  # where its accumulator starts in the entity's state array


@dataclass(frozen=True, kw_only=True)
class _CompiledAggregation:
    name: str
    value: Callable[[Row], Any]  # the aggregation's value_sql(): a number, or None when the row does not count
    columns: tuple[_Column, ...]  # its windowed and decayed columns


class FeatureEvaluator:
    """One feature set compiled for Python: keys, per-row updates, and the packed value of an entity.

    An entity's state is an `array('d')`: slot 0 holds MAX(event_time) (-inf until the first row), then one
    accumulator per column in `columns()` order. `state_name` changes whenever the layout or any aggregator
    parameter does, so keep state under it.
    """

    def __init__(self, feature_set: FeatureSet) -> None:
        entity = feature_set.entity
        self.feature_set = feature_set
        # `hashtag` is not a row column: the job explodes `hashtags` (CROSS JOIN UNNEST), one row per element.
        self._key_index = tuple(_HASHTAGS if k == "hashtag" else COLUMN_INDEX[k] for k in entity.key_columns)
        self._explodes = entity.explodes_hashtags
        self._where = compile_predicate(feature_set.where) if feature_set.where else None
        # Derived columns (e.g. comment sentiment) are computed per row after the set's `where`, as in the job,
        # and appended to the row for the aggregations that use them.
        derived = tuple(d.name for d in feature_set.derived)
        self._derive = tuple(compile_value(d.sql) for d in feature_set.derived)
        # A row that counts in none of the aggregations does not touch the entity, as in the job.
        counted = feature_set.counted_where
        self._counted = compile_predicate(counted, derived) if counted else None

        windows_ms = [int(w.total_seconds() * 1000) for w in feature_set.windows]
        half_lives_ms = [int(h.total_seconds() * 1000) for h in feature_set.half_lives]
        names = iter(feature_set.columns())
        offset = 1
        columns_of: dict[str, list[_Column]] = {}
        for aggregation in feature_set.aggregations:  # columns(): windowed sums first ...
            for window_ms in windows_ms:
                aggregator = SlidingSum(window_ms=window_ms, tiles=feature_set.tiles)
                column = _Column(name=next(names), aggregator=aggregator, offset=offset)
                columns_of.setdefault(aggregation.name, []).append(column)
                offset += aggregator.width
        for aggregation in feature_set.aggregations:  # ... then decayed sums
            for half_life_ms in half_lives_ms:
                aggregator = DecayedSum(half_life_ms=half_life_ms)
                columns_of[aggregation.name].append(_Column(name=next(names), aggregator=aggregator, offset=offset))
                offset += aggregator.width
        self.width = offset
        self._aggregations = tuple(
            _CompiledAggregation(name=a.name, value=compile_value(a.value_sql(), derived),
                                 columns=tuple(columns_of[a.name]))
            for a in feature_set.aggregations)
        # Storage order is columns() order, which is the order offsets were handed out in.
        self._columns = tuple(sorted((c for a in self._aggregations for c in a.columns), key=lambda c: c.offset))
        # Per aggregation: its value function and the bound `add` of each of its columns (the hot loop).
        self._updates = tuple((a.value, tuple((c.aggregator.add, c.offset) for c in a.columns))
                              for a in self._aggregations)

        layout = ",".join(f"{c.name}:{c.aggregator.state_suffix}" for c in self._columns)
        self.state_name = f"{feature_set.qualified_name}:{sha256(layout.encode()).hexdigest()[:12]}"
        empty = array("d", bytes(8 * self.width))
        empty[0] = EMPTY
        for column in self._columns:
            column.aggregator.initialize(empty, column.offset)
        self._empty = empty

    @classmethod
    def of(cls, feature_set: FeatureSet) -> FeatureEvaluator:
        return cls(feature_set)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._columns)

    def key(self, row: Row) -> str | None:
        """The entity id of a row (key columns joined with ':'), or None when the row is not the set's: a key
        column is NULL or empty, or the feature set's own `where` is not true. Per-hashtag sets: use `keys`."""
        if self._explodes:
            raise ValueError(f"{self.feature_set.qualified_name} explodes hashtags: a row has many keys, use keys()")
        parts = []
        for index in self._key_index:
            part = row[index]
            if not part:
                return None
            parts.append(part)
        if not self._admits(row):
            return None
        return parts[0] if len(parts) == 1 else ":".join(parts)

    def keys(self, row: Row) -> list[str]:
        """Every entity id the row updates, once per update: one key, none, or for a per-hashtag set one per
        element of `hashtags` (a repeated hashtag counts twice, as after the job's UNNEST)."""
        if not self._explodes:
            key = self.key(row)
            return [] if key is None else [key]
        if not self._admits(row):
            return []
        keys = []
        for tag in row[_HASHTAGS] or ():
            parts = [tag if index == _HASHTAGS else row[index] for index in self._key_index]
            if all(parts):
                keys.append(":".join(parts))
        return keys

    def _admits(self, row: Row) -> bool:
        """The set's own `where` holds, no derived value is NULL (its function failed: the job dead-letters the
        row, udfs/guard.py), and the row counts in at least one aggregation."""
        if self._where is not None and not self._where(row):
            return False
        if self._derive:
            derived = tuple(derive(row) for derive in self._derive)
            if any(value is None for value in derived):
                return False
            row = (*row, *derived)
        if self._counted is None:
            return True
        return self._counted(row)

    def new_state(self) -> array:
        return array("d", self._empty)

    def update(self, state: array, row: Row) -> None:
        """Fold one row of this entity into its state (the caller checked `key(row)`)."""
        event_time = row[_EVENT_TIME]
        if self._derive:
            row = (*row, *(derive(row) for derive in self._derive))
        if event_time > state[0]:
            state[0] = event_time
        isfinite = math.isfinite
        for value_of, adds in self._updates:
            try:
                value = value_of(row)
            except (TypeError, ValueError, OverflowError):  # a value of an unexpected type: Flink would not plan it
                continue
            if value is None or not isfinite(value):
                continue  # SQL NULL, NaN or infinite: ignored (and the column's reference not advanced), as in Java
            for add, offset in adds:
                add(state, offset, value, event_time)

    def merge(self, state: array, other: array) -> None:
        """Fold another state of the same entity (e.g. from another partition) into `state`."""
        state[0] = max(state[0], other[0])
        for column in self._columns:
            column.aggregator.merge(state, column.offset, other, column.offset)

    def results(self, state: array) -> list[float | None]:
        """Column values in `columns()` order; None for a column that accepted no row."""
        return [c.aggregator.result(state, c.offset) for c in self._columns]

    def values(self, state: array) -> dict[str, float | None]:
        return dict(zip(self.columns, self.results(state), strict=True))

    def event_time(self, state: array) -> int:
        """MAX(event_time) over the entity's rows, ms (0 when it has none, as the Java sink writes a NULL)."""
        return 0 if state[0] == EMPTY else int(state[0])

    def pack(self, state: array, *, update_time_ms: int = 0) -> bytes:
        """The packed value: int64 LE event time, int64 LE update time, then float32 LE per column (NaN for
        a column with no rows, float32 overflow to ±inf, as Java's `(float)` cast)."""
        header = self.event_time(state).to_bytes(8, "little", signed=True) + update_time_ms.to_bytes(
            8, "little", signed=True)
        floats = array("f", [math.nan if v is None else v for v in self.results(state)])
        if not _LITTLE_ENDIAN:
            floats.byteswap()
        return header + floats.tobytes()

    def state_to_bytes(self, state: array) -> bytes:
        return state.tobytes()

    def state_from_bytes(self, data: bytes) -> array:
        state = array("d")
        state.frombytes(data)
        if len(state) != self.width:
            raise ValueError(f"state of {len(state)} slots does not fit {self.state_name} ({self.width} slots)")
        return state
