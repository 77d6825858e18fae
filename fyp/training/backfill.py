"""The whole backfill of one training set over a history, in memory: spine rows, labels, features, histories.

Pure: a `History` in, an Arrow table out (the columns of `training.<name>`, fyp.training.table), with no I/O.
`fyp training-set build` reads the history and writes the table around it; `fyp bench training-set` runs it on
generated traffic.

Which rows: the distinct history events (first copy of each event_id) matching the spine predicate, with event
time in [since, until), whose label horizon has closed: t + horizon <= the newest history event time minus the
allowed lateness (later rows may still have label events to come, so a later build adds them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from featurespec.reference.sql import compile_predicate
from featurespec.training import TrainingSet, feature_column
from fyp.training.history import ALLOWED_LATENESS_MS, History
from fyp.training.labels import label_values
from fyp.training.pointintime import feature_block, history_lists
from fyp.training.table import SPINE_COLUMNS
from udfs.envelope import ENGAGEMENT_ROW_FIELDS

__all__ = ["Backfill", "Progress", "backfill"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)
_INDEX = {name: i for i, (name, _) in enumerate(ENGAGEMENT_ROW_FIELDS)}


@dataclass(frozen=True, kw_only=True)
class Backfill:
    """The built rows and how they came about.

    spine_rows: spine events in range; open_rows: of those, left out because their label horizon is still open.
    seconds: per stage (admission, labels, each feature set and history)."""

    table: pa.Table
    history_rows: int
    spine_rows: int
    open_rows: int
    newest_ms: int | None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def label_rates(self) -> dict[str, float]:
        n = self.table.num_rows
        return {name.removeprefix("label_"): (self.table.column(name).to_numpy(zero_copy_only=False).sum() / n
                                              if n else 0.0)
                for name in self.table.column_names if name.startswith("label_")}


def spine_indexes(training_set: TrainingSet, history: History, *, since_ms: int | None, until_ms: int | None,
                  newest_ms: int | None = None, allowed_lateness_ms: int = ALLOWED_LATENESS_MS,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(closed, open): the history rows that are spine rows in [since, until), split by whether their label
    horizon has closed; each in event-time order.

    newest_ms: the newest event time of the whole history, when `history` holds only part of it."""
    times = history.event_times
    spine = compile_predicate(training_set.spine)
    distinct = history.distinct()
    candidates = np.fromiter((bool(distinct[i]) and spine(row) for i, row in enumerate(history.rows)), bool,
                             len(history))
    if since_ms is not None:
        candidates &= times >= since_ms
    if until_ms is not None:
        candidates &= times < until_ms
    chosen = np.flatnonzero(candidates)
    chosen = chosen[np.argsort(times[chosen], kind="stable")]
    if not len(history):
        return chosen, chosen
    horizon_ms = int(training_set.label_horizon.total_seconds() * 1000)
    newest = max(int(times.max()), newest_ms or int(times.max()))
    closed = times[chosen] + horizon_ms <= newest - allowed_lateness_ms
    return chosen[closed], chosen[~closed]


def backfill(training_set: TrainingSet, history: History, *, since_ms: int | None = None,
             until_ms: int | None = None, newest_ms: int | None = None, progress: Progress | None = None) -> Backfill:
    """Every closed spine row of `training_set` in [since_ms, until_ms) with its labels, features and histories.

    newest_ms: the whole history's newest event time, when `history` is only its older part (spine_indexes).
    progress: called with (stage, done, total) as each stage ends."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    times = history.event_times
    admitted = history.admitted()
    distinct = np.flatnonzero(history.distinct())
    rows_at, open_at = spine_indexes(training_set, history, since_ms=since_ms, until_ms=until_ms,
                                     newest_ms=newest_ms)
    seconds["admission"] = time.perf_counter() - started
    spine_rows = [history.rows[i] for i in rows_at.tolist()]
    spine_times = times[rows_at]
    stages = len(training_set.labels) + len(training_set.feature_sets) + len(training_set.histories)
    done = 0

    def step(name: str, began: float) -> None:
        nonlocal done
        done += 1
        seconds[name] = round(time.perf_counter() - began, 3)
        if progress:
            progress(name, done, stages)

    columns: dict[str, pa.Array] = {}
    for name in SPINE_COLUMNS:
        values = [row[_INDEX[name]] for row in spine_rows]
        if name == "event_time":
            columns[name] = pa.array(spine_times * 1000, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        else:
            columns[name] = pa.array(values, pa.list_(pa.string()) if name == "hashtags" else pa.string())
    label_events = [history.rows[i] for i in distinct.tolist()]
    for label in training_set.labels:
        began = time.perf_counter()
        columns[label.column] = pa.array(label_values(label, label_events, times[distinct], spine_rows, spine_times))
        step(label.column, began)
    for feature_set in training_set.feature_sets:
        began = time.perf_counter()
        block = feature_block(feature_set, history.rows, admitted, times, spine_rows, spine_times)
        absent = ~block.present
        for i, column in enumerate(block.columns):
            columns[feature_column(feature_set, column)] = pa.array(
                block.values[:, i].astype(np.float32), pa.float32(), mask=absent)
        step(feature_set.name, began)
    for spec in training_set.histories:
        began = time.perf_counter()
        columns[spec.name] = pa.array(history_lists(spec, history.rows, admitted, times, spine_rows, spine_times),
                                      pa.list_(pa.string()))
        step(spec.name, began)
    seconds["total"] = round(time.perf_counter() - started, 3)
    return Backfill(table=pa.table(columns), history_rows=len(history), spine_rows=len(rows_at) + len(open_at),
                    open_rows=len(open_at), newest_ms=int(times.max()) if len(history) else None, seconds=seconds)
