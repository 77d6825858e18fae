"""Decode packed feature values (docs/REDIS_LAYOUT.md) and apply read-time window and decay corrections.

A packed value is: int64 LE event time ms, int64 LE update time ms, then one float32 LE per column of the
feature set, in `FeatureSet.columns()` order. Values are as of the entity's last event time; at read time
a sliding window whose whole span has passed since then is zero, and a decayed sum decays further to now.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from featurespec import FeatureSet, window_label

__all__ = ["HEADER_BYTES", "ReadPlan", "decode_matrix", "decode_row", "decode_rows_at", "ratio_columns", "read_columns"]

HEADER_BYTES = 16


@dataclass(frozen=True, kw_only=True)
class ReadPlan:
    """Per-column read-time rules of one feature set, precomputed once."""

    feature_set: FeatureSet
    columns: tuple[str, ...]
    window_ms: np.ndarray  # per column: the window length, or 0 for a decayed column
    half_life_ms: np.ndarray  # per column: the half-life, or 0 for a windowed column
    ratios: tuple[tuple[str, int, int], ...] = ()  # (ratio column, numerator index, denominator index)
    # For `decode_row`, derived once: the row's struct, and the column indexes of each window and half-life.
    row_struct: struct.Struct = field(init=False)
    window_groups: tuple[tuple[float, tuple[int, ...]], ...] = field(init=False)
    decay_groups: tuple[tuple[float, tuple[int, ...]], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row_struct", struct.Struct(f"<{len(self.columns)}f"))
        object.__setattr__(self, "window_groups", _groups(self.window_ms))
        object.__setattr__(self, "decay_groups", _groups(self.half_life_ms))

    @property
    def packed_bytes(self) -> int:
        return HEADER_BYTES + 4 * len(self.columns)

    @classmethod
    def of(cls, feature_set: FeatureSet) -> ReadPlan:
        aggregations = len(feature_set.aggregations)
        windows = [w.total_seconds() * 1000 for w in feature_set.windows] * aggregations
        half_lives = [h.total_seconds() * 1000 for h in feature_set.half_lives] * aggregations
        window_ms = windows + [0.0] * len(half_lives)
        half_life_ms = [0.0] * len(windows) + half_lives
        columns = feature_set.columns()
        index = {c: i for i, c in enumerate(columns)}
        ratios = tuple((name, index[num], index[den]) for name, num, den in ratio_columns(feature_set))
        return cls(feature_set=feature_set, columns=columns, window_ms=np.array(window_ms),
                   half_life_ms=np.array(half_life_ms), ratios=ratios)


def decode_matrix(plan: ReadPlan, values: list[bytes | None], now_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of feature values (NaN for a missing key) and their event times (0 if missing), as of `now_ms`."""
    width = len(plan.columns)
    expected = HEADER_BYTES + 4 * width
    present = [row for row, value in enumerate(values) if value is not None and len(value) == expected]
    if not present:
        return np.full((len(values), width), np.nan), np.zeros(len(values), dtype=np.int64)
    # One frombuffer over all rows: a Python loop per row cost ~5 µs each, most of a 500-candidate read.
    packed = np.frombuffer(b"".join(values[row] for row in present), dtype=_packed_dtype(width))
    found = packed["values"].astype(np.float64)
    found_times = packed["event_time"].astype(np.int64)
    age = (now_ms - found_times).clip(min=0)[:, None].astype(np.float64)
    found[(plan.window_ms > 0) & (age >= plan.window_ms)] = 0.0
    decayed = plan.half_life_ms > 0
    if decayed.any():
        found[:, decayed] *= np.exp2(-age / plan.half_life_ms[decayed])
    if len(present) == len(values):  # the usual case: every candidate has features
        return found, found_times
    matrix = np.full((len(values), width), np.nan)
    event_times = np.zeros(len(values), dtype=np.int64)
    rows = np.asarray(present)
    matrix[rows] = found
    event_times[rows] = found_times
    return matrix, event_times


def decode_row(plan: ReadPlan, value: bytes | None, now_ms: int) -> tuple[dict[str, float], int] | None:
    """One entity's {column: value} with its ratios, and its event time, as of `now_ms`; None if missing.

    The single-entity read path: the same rules as `decode_matrix`, in plain Python. For one row of ~50
    columns, a struct unpack and a loop per window and half-life cost ~10 µs less than numpy's calls (each
    has a fixed cost, and more so on a cold cache, as between requests of a serving process)."""
    if value is None or len(value) != plan.packed_bytes:
        return None
    event_time = _EVENT_TIME.unpack_from(value)[0]
    values = list(plan.row_struct.unpack_from(value, HEADER_BYTES))
    age = max(0, now_ms - event_time)
    for window_ms, indexes in plan.window_groups:
        if age >= window_ms:
            for i in indexes:
                values[i] = 0.0
    if age:
        for half_life_ms, indexes in plan.decay_groups:
            factor = 2.0 ** (-age / half_life_ms)
            for i in indexes:
                values[i] *= factor
    named = dict(zip(plan.columns, values, strict=True))
    for name, numerator, denominator in plan.ratios:
        named[name] = values[numerator] / values[denominator] if values[denominator] > 0 else float("nan")
    return named, event_time


_EVENT_TIME = struct.Struct("<q")


def _groups(per_column_ms: np.ndarray) -> tuple[tuple[float, tuple[int, ...]], ...]:
    """(length, column indexes) for each distinct non-zero window length or half-life."""
    return tuple((float(ms), tuple(int(i) for i in np.flatnonzero(per_column_ms == ms)))
                 for ms in np.unique(per_column_ms[per_column_ms > 0]))


@cache
def _packed_dtype(width: int) -> np.dtype:
    return np.dtype([("event_time", "<i8"), ("update_time", "<i8"), ("values", "<f4", (width,))])


def read_columns(plan: ReadPlan) -> tuple[str, ...]:
    """The names `decode_row` returns, in its order: the value columns, then the ratios."""
    return (*plan.columns, *(name for name, _, _ in plan.ratios))


def decode_rows_at(plan: ReadPlan, values: list[bytes | None], now_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`decode_row` for many values at once, each as of its own time: a (len(values), len(read_columns(plan)))
    matrix (a NaN row for a missing value) and the values' event times (0 if missing).

    For training rows (fyp.training), each read as of the row's own time `now_ms[i]`. The rules are
    `decode_row`'s, computed as it does (`2.0 ** x` for the decay, NaN for a ratio whose denominator is not
    positive), so a row equals what `decode_row` returns for it at that time, to the last bit of a float64: on a
    CPU with AVX-512 numpy's `np.power` is a SIMD routine that differs from C's `pow` by one unit in the last place
    for ~5 % of inputs (measured on this project's CI machines), far inside the skew check's float32 comparison.
    """
    names = read_columns(plan)
    width = len(plan.columns)
    matrix = np.full((len(values), len(names)), np.nan)
    event_times = np.zeros(len(values), dtype=np.int64)
    present = np.fromiter((v is not None and len(v) == plan.packed_bytes for v in values), bool, len(values))
    if not present.any():
        return matrix, event_times
    rows = np.flatnonzero(present)
    packed = np.frombuffer(b"".join(values[row] for row in rows), dtype=_packed_dtype(width))
    found = packed["values"].astype(np.float64)
    found_times = packed["event_time"].astype(np.int64)
    age = np.maximum(0, np.asarray(now_ms, dtype=np.int64)[rows] - found_times).astype(np.float64)[:, None]
    found[(plan.window_ms > 0) & (age >= plan.window_ms)] = 0.0
    decayed = plan.half_life_ms > 0
    if decayed.any():  # np.power: C pow, or with AVX-512 a SIMD pow within one ulp of it (docstring)
        found[:, decayed] *= np.power(2.0, -age / plan.half_life_ms[decayed])
    matrix[rows, :width] = found
    for i, (_, numerator, denominator) in enumerate(plan.ratios):
        den = found[:, denominator]
        with np.errstate(divide="ignore", invalid="ignore"):
            matrix[rows, width + i] = np.where(den > 0, found[:, numerator] / den, np.nan)
    event_times[rows] = found_times
    return matrix, event_times


def ratio_columns(feature_set: FeatureSet) -> list[tuple[str, str, str]]:
    """(ratio column, numerator column, denominator column) for every ratio and window/decay."""
    suffixes = [window_label(w) for w in feature_set.windows] + [
        f"decay_{window_label(h)}" for h in feature_set.half_lives]
    return [(f"{r.name}_{s}", f"{r.numerator}_{s}", f"{r.denominator}_{s}")
            for r in feature_set.ratios for s in suffixes]
