"""The fine ranker's inputs: the feature columns a training set declares, as one float32 matrix.

The columns are those `fyp training-set build` writes for the declaration's feature sets
(`fyp.training.table.feature_columns`: `<set>__<column>`), in declaration order, so training rows and the features
serving reads map to the same positions. Each value becomes `sign(x) * log1p(|x|)` (counts and watch times span
six orders of magnitude), then is standardised with the training rows' mean and deviation; a missing value (the
entity had no events in the window: null in the table) becomes 0, the mean. One extra input per feature set says
whether all of that set's values were missing, so "no history" and "average history" stay apart.

>>> spec = fit_inputs({"s__a": np.array([0.0, 10.0, np.nan])}, (("s", ("s__a",)),))
>>> transform(spec, {"s__a": np.array([10.0, np.nan])}).round(2).tolist()
[[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["HEADS", "InputSpec", "fit_inputs", "transform"]

# The ranker's heads: one probability each, from the training set's labels `label_<head>` (training/watch_outcomes.py).
HEADS = ("completed", "liked", "shared", "followed", "skipped")


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """Input columns by feature set, and each column's mean and deviation after the log transform."""

    sets: tuple[tuple[str, tuple[str, ...]], ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    # Cached: serving transforms every feed's rows with one spec, and rebuilding these per call was a measurable
    # part of the fine stage (py-spy of `fyp serve feed`, docs/FEED.md "Fewer GIL hand-overs").
    @cached_property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for _, columns in self.sets for c in columns)

    @cached_property
    def _scale(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)

    @property
    def width(self) -> int:
        """Inputs per row: the columns plus one missing flag per set."""
        return len(self.columns) + len(self.sets)

    def to_json(self) -> str:
        return json.dumps({"sets": [[name, list(cols)] for name, cols in self.sets], "mean": list(self.mean),
                           "std": list(self.std)})

    @classmethod
    def from_json(cls, text: str) -> InputSpec:
        raw = json.loads(text)
        return cls(sets=tuple((name, tuple(cols)) for name, cols in raw["sets"]), mean=tuple(raw["mean"]),
                   std=tuple(raw["std"]))


def _logged(columns: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    missing = [name for name in names if name not in columns]
    if missing:
        raise ValueError(f"{len(missing)} input columns missing, e.g. {missing[:3]}: is this the training set the "
                         "ranker was built for?")
    raw = np.stack([np.asarray(columns[name], dtype=np.float64) for name in names], axis=1)
    return np.sign(raw) * np.log1p(np.abs(raw))


def fit_inputs(columns: Mapping[str, np.ndarray], sets: Sequence[tuple[str, Sequence[str]]]) -> InputSpec:
    """Means and deviations of the logged columns over the training rows (NaN-aware; a constant column: 1)."""
    names = [c for _, cols in sets for c in cols]
    logged = _logged(columns, names)
    with np.errstate(all="ignore"):
        mean = np.nan_to_num(np.nanmean(logged, axis=0))
        std = np.nan_to_num(np.nanstd(logged, axis=0))
    std[std < 1e-6] = 1.0
    return InputSpec(sets=tuple((name, tuple(cols)) for name, cols in sets), mean=tuple(mean.tolist()),
                     std=tuple(std.tolist()))


def transform(spec: InputSpec, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The model's input matrix (rows x spec.width, float32) for these rows."""
    logged = _logged(columns, spec.columns)
    rows, width = logged.shape
    missing = np.isnan(logged)
    mean, std = spec._scale
    out = np.empty((rows, spec.width), dtype=np.float32)
    out[:, :width] = np.where(missing, 0.0, (logged - mean) / std)
    start = 0
    for flag, (_, cols) in enumerate(spec.sets, start=width):  # per set: whether all of its values were missing
        out[:, flag] = missing[:, start:start + len(cols)].all(axis=1)
        start += len(cols)
    return out
