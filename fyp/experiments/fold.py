"""The experiment report's two streaming folds over engagement record batches: memory grows with the experiment's
users, not with the rows. Pure: Arrow record batches in (any split, any order), per-user sums out; the scan that
feeds them is `fyp/experiments/history.py`, the statistics over the sums `fyp/experiments/report.py`.

Why two passes: a user's events count from their first exposure (docs/FEED.md "Experiment report"), and the scan
yields rows in file order, not time order, so an event cannot be judged until every impression of its user has
been seen. Pass 1 (`fold_exposures`) reads impressions only and keeps, per (user, arm of the experiment), the
earliest one. Pass 2 (`fold_user_sums`) reads every event of the window and adds each of an exposed user's events
at or after their first exposure to fixed per-user arrays. Every sum is then exact: counts and integer
milliseconds add in any order. Retention folds the same way (a count of events on a later UTC day than the
first exposure's day, known from pass 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.engagement.common import COMPLETION_FRACTION, SKIP_DWELL_MS

__all__ = ["DAY_MS", "EVENT_COLUMNS", "EXPOSURE_COLUMNS", "SUMS", "Exposures", "fold_exposures", "fold_user_sums"]

DAY_MS = 86_400_000
# The columns each pass reads (event_time as a timestamp or as epoch ms).
EXPOSURE_COLUMNS = ("event_type", "user_id", "event_time", "arms")
EVENT_COLUMNS = ("event_type", "user_id", "event_time", "watch_ms", "video_duration_ms", "dwell_ms", "action")
# The per-user sums pass 2 keeps, in this order.
SUMS = ("impression", "watch", "watched_ms", "completion", "like", "skip", "later_day")
# Pass 1 merges its per-batch minima into the running table once they hold this many rows (or as many as the
# table): each merge costs the table's size, so merging on a doubling schedule keeps the total linear.
_MERGE_ROWS = 500_000


@dataclass(frozen=True, kw_only=True)
class Exposures:
    """Who saw the experiment: each clean user's first exposure (epoch ms) and arm, indexed and sorted by user id,
    and the users whose impressions carry two or more of its arms (sorted)."""

    first: pd.Series
    arm_of: pd.Series
    conflicted: list[str]

    @property
    def empty(self) -> bool:
        return self.first.empty and not self.conflicted


def _require(batch: pa.RecordBatch, columns: Iterable[str]) -> None:
    if missing := [c for c in columns if c not in batch.schema.names]:
        raise ValueError(f"the history lacks columns {missing} (an Iceberg history from before Impression v2 gets "
                         "`arms` at `fyp up`: docs/ANALYSTS.md)")


def _epoch_ms(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """event_time as int64 epoch ms, from the table's timestamptz or from epoch ms already."""
    if pa.types.is_timestamp(column.type):
        micros = pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.int64())
        return np.asarray(micros.to_numpy(zero_copy_only=False)) // 1000
    return np.asarray(pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False))


def _merge_minima(parts: list[pa.Table]) -> pa.Table:
    merged = pa.concat_tables(parts).group_by(["user_id", "arm"]).aggregate([("event_time", "min")])
    return merged.rename_columns(["user_id", "arm", "event_time"])


def fold_exposures(batches: Iterable[pa.RecordBatch], experiment: str) -> Exposures:
    """Pass 1: the impressions (other event types are skipped) whose arm ids name `experiment` ('E:<arm>')."""
    prefix = experiment + ":"
    table: pa.Table | None = None
    parts: list[pa.Table] = []
    buffered = 0
    for batch in batches:
        _require(batch, EXPOSURE_COLUMNS)
        impressions = batch.filter(pc.equal(batch.column("event_type"), "impression"))
        if impressions.num_rows == 0:
            continue
        arms = impressions.column("arms")
        flat = pc.list_flatten(arms)  # null lists (rows from before the column existed) have no arm
        if pa.types.is_null(flat.type):  # only empty lists in this batch
            continue
        rows = pc.list_parent_indices(arms)
        mine = pc.starts_with(flat, prefix)
        rows = pc.filter(rows, mine)
        if len(rows) == 0:
            continue
        part = pa.table({
            "user_id": pc.take(impressions.column("user_id"), rows).cast(pa.string()),
            "arm": pc.utf8_slice_codeunits(pc.filter(flat, mine), len(prefix)).cast(pa.string()),
            "event_time": pa.array(_epoch_ms(pc.take(impressions.column("event_time"), rows)), pa.int64()),
        })
        parts.append(part)
        buffered += part.num_rows
        if buffered >= max(_MERGE_ROWS, table.num_rows if table is not None else 0):
            table = _merge_minima(([table] if table is not None else []) + parts)
            parts, buffered = [], 0
    if parts:
        table = _merge_minima(([table] if table is not None else []) + parts)
    if table is None:
        empty = pd.Series([], dtype="int64", index=pd.Index([], dtype=object, name="user_id"))
        return Exposures(first=empty, arm_of=empty.astype(object), conflicted=[])
    frame = table.to_pandas()
    arms_of = frame.groupby("user_id")["arm"].nunique()
    conflicted = sorted(arms_of.index[arms_of > 1])
    clean = frame[~frame["user_id"].isin(conflicted)].set_index("user_id").sort_index()
    return Exposures(first=clean["event_time"].astype("int64"), arm_of=clean["arm"], conflicted=conflicted)


def _floats(batch: pa.RecordBatch, name: str) -> np.ndarray:
    """A numeric column as float64 with NaN for null (an all-null column may come typed as null)."""
    return np.asarray(pc.cast(batch.column(name), pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


def fold_user_sums(batches: Iterable[pa.RecordBatch], first: pd.Series) -> pd.DataFrame:
    """Pass 2: per user of `first` (user id -> first exposure, epoch ms), the sums of SUMS over their events at or
    after first exposure; a DataFrame indexed like `first`, 0 for a user without such events."""
    users = pd.Index(first.index)
    first_ms = first.to_numpy(dtype=np.int64)
    first_day = first_ms // DAY_MS
    sums = np.zeros((len(SUMS), len(users)), dtype=np.float64)  # float: exact for integers below 2**53
    for batch in batches:
        _require(batch, EVENT_COLUMNS)
        if batch.num_rows == 0 or len(users) == 0:
            continue
        who = users.get_indexer(batch.column("user_id").to_numpy(zero_copy_only=False))
        t = _epoch_ms(batch.column("event_time"))
        keep = who >= 0
        keep[keep] &= t[keep] >= first_ms[who[keep]]
        if not keep.any():
            continue
        index = pa.array(np.flatnonzero(keep))
        rows = batch.take(index)
        who, t = who[keep], t[keep]
        kind = rows.column("event_type").to_numpy(zero_copy_only=False)
        watch_ms, duration = _floats(rows, "watch_ms"), _floats(rows, "video_duration_ms")
        dwell = _floats(rows, "dwell_ms")
        action = rows.column("action").to_numpy(zero_copy_only=False)
        watch = kind == "watch"
        with np.errstate(invalid="ignore"):  # NaN compares False, as the metric definitions want
            values = (
                kind == "impression",
                watch,
                np.where(watch & ~np.isnan(watch_ms), watch_ms, 0.0),
                watch & (duration > 0) & (watch_ms >= COMPLETION_FRACTION * duration),
                (kind == "like") * ((action == "LIKE").astype(int) - (action == "UNLIKE").astype(int)),
                (kind == "skip") & (dwell < SKIP_DWELL_MS),
                t // DAY_MS > first_day[who],
            )
        # Per batch, its users' sums by bincount over their positions among the batch's users (np.add.at on
        # the full arrays measured ~3x slower, and a bincount as long as all users costs that length per batch).
        present, position = np.unique(who, return_inverse=True)
        for row, value in zip(sums, values, strict=True):
            row[present] += np.bincount(position, weights=np.asarray(value, dtype=np.float64),
                                        minlength=len(present))
    return pd.DataFrame(sums.T, index=users, columns=list(SUMS))
