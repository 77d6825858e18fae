"""The streaming folds (fyp/experiments/fold.py) give the same report as the in-memory computation they replaced:
the whole window in one pandas frame, `_in_memory_per_user` below (the pre-streaming report.py code, kept here as
the oracle), on the same rows cut into batches of several sizes and shuffled, so a user's rows, and their first
exposure, fall in different batches than their other events."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.engagement.common import COMPLETION_FRACTION, SKIP_DWELL_MS
from fyp.experiments.fold import SUMS, fold_exposures, fold_user_sums
from fyp.experiments.report import COLUMNS, DAY_MS, METRICS
from fyp.experiments.stats import compare, summarise
from tests.unit.fyp.experiments.test_report import T0, _event, _hand_table, batches_of, report_of


def _in_memory_per_user(frame: pd.DataFrame, experiment: str) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """The oracle: (per-user sums, arm per user, conflicted users) as report.py computed them before streaming."""
    impressions = frame.loc[frame["event_type"] == "impression", ["user_id", "event_time", "arms"]]
    exploded = impressions.explode("arms").dropna(subset=["arms"])
    prefix = experiment + ":"
    mine = exploded[exploded["arms"].str.startswith(prefix)]
    exposures = pd.DataFrame({"user_id": mine["user_id"], "arm": mine["arms"].str.slice(len(prefix)),
                              "event_time": mine["event_time"]})
    arms_of = exposures.groupby("user_id")["arm"].nunique()
    conflicted = sorted(arms_of.index[arms_of > 1])
    clean = exposures[~exposures["user_id"].isin(conflicted)]
    first = clean.groupby("user_id")["event_time"].min()
    arm_of = clean.groupby("user_id")["arm"].first()
    events = frame[frame["user_id"].isin(first.index)].copy()
    events = events[events["event_time"] >= events["user_id"].map(first)]
    for column in ("watch_ms", "video_duration_ms", "dwell_ms"):
        events[column] = pd.to_numeric(events[column]).astype(float)
    kind = events["event_type"]
    watch = kind == "watch"
    duration = events["video_duration_ms"]
    events["impression"] = kind == "impression"
    events["watch"] = watch
    events["watched_ms"] = events["watch_ms"].where(watch, 0).fillna(0)
    events["completion"] = watch & (duration > 0) & (events["watch_ms"] >= COMPLETION_FRACTION * duration)
    events["like"] = (kind == "like") * events["action"].map({"LIKE": 1, "UNLIKE": -1}).fillna(0)
    events["skip"] = (kind == "skip") & (events["dwell_ms"] < SKIP_DWELL_MS)
    events["later_day"] = events["event_time"] // DAY_MS > events["user_id"].map(first) // DAY_MS
    sums = events.groupby("user_id")[list(SUMS)].sum()
    return sums.reindex(first.index, fill_value=0), arm_of, conflicted


def _generated(users: int, seed: int) -> pd.DataFrame:
    """Random rows over 3 days: users in arm a, b, both (conflicted) or none, events before and after exposure,
    missing values, likes taken back, and arms from two experiments."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for u in range(users):
        user = f"u{u}"
        choice = rng.integers(0, 10)
        arms = ["exp:a"] if choice < 4 else ["exp:b"] if choice < 8 else ["exp:a", "exp:b"] if choice < 9 else []
        for _ in range(rng.integers(1, 12)):
            t = int(T0 + rng.integers(0, 3 * DAY_MS))
            kind = rng.choice(["impression", "watch", "like", "skip", "share"])
            duration = int(rng.choice([0, 10_000, 30_000]))
            if kind == "impression":
                carried = [str(rng.choice(arms))] if arms and rng.random() < 0.6 else []
                rows.append(_event(kind, user, t, arms=carried + (["other:x"] if rng.random() < 0.3 else [])))
            elif kind == "watch":
                watched = None if rng.random() < 0.05 else int(rng.integers(0, duration + 1))
                rows.append(_event(kind, user, t, watch=watched, duration=duration))
            elif kind == "like":
                rows.append(_event(kind, user, t, action=str(rng.choice(["LIKE", "UNLIKE"]))))
            elif kind == "skip":
                rows.append(_event(kind, user, t, dwell=int(rng.integers(0, 4_000)), duration=duration))
            else:
                rows.append(_event(kind, user, t))
    return pd.DataFrame(rows, columns=list(COLUMNS))


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("rows", [None, 1, 7, 64, 1_000])
def test_the_streaming_fold_equals_the_in_memory_computation(seed: int, rows: int | None) -> None:
    frame = _generated(300, seed).sample(frac=1.0, random_state=seed)  # shuffled: time order is not file order
    expected, arm_of, conflicted = _in_memory_per_user(frame, "exp")
    assert len(expected) > 100 and conflicted and expected["later_day"].sum() > 0  # the generator covers each case
    batches = batches_of(frame, rows)
    exposures = fold_exposures(batches, "exp")
    assert exposures.conflicted == conflicted
    pd.testing.assert_series_equal(exposures.arm_of, arm_of, check_names=False)
    sums = fold_user_sums(batches, exposures.first)
    pd.testing.assert_frame_equal(sums, expected.astype(float), check_names=False)


def test_a_user_split_across_batches_counts_once_from_the_first_exposure() -> None:
    """u1's events sit in three batches, its later (second) impression in the first, its first exposure in the
    last, and a watch before that exposure in the middle: only the events from the first exposure count."""
    rows = [
        _event("impression", "u1", T0 + 5_000, arms=["exp:a"]),
        _event("watch", "u1", T0 + 6_000, watch=10_000, duration=10_000),
        _event("watch", "u1", T0 + 500, watch=7_000, duration=10_000),  # before the first exposure
        _event("skip", "u1", T0 + DAY_MS, dwell=100, duration=10_000),
        _event("impression", "u1", T0 + 1_000, arms=["exp:a"]),  # the first exposure
        _event("impression", "u2", T0 + 1_000, arms=["exp:b"]),
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    batches = batches_of(frame, 2)
    exposures = fold_exposures(batches, "exp")
    assert exposures.first.to_dict() == {"u1": T0 + 1_000, "u2": T0 + 1_000}
    sums = fold_user_sums(batches, exposures.first).loc["u1"].to_dict()
    assert sums == {"impression": 2, "watch": 1, "watched_ms": 10_000, "completion": 1, "like": 0, "skip": 1,
                    "later_day": 1}


def test_rows_from_before_the_arms_column_have_no_arm() -> None:
    """The history's rows written before Impression v2 read `arms` as null: no exposure, no error."""
    rows = [_event("impression", "u1", T0, arms=["exp:a"]), _event("impression", "u2", T0),
            _event("impression", "u3", T0)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["arms"] = [["exp:a"], None, None]
    assert fold_exposures(batches_of(frame, 1), "exp").first.to_dict() == {"u1": T0}
    assert fold_exposures(batches_of(frame), "exp").first.to_dict() == {"u1": T0}


@pytest.mark.parametrize("rows", [1, 3, 5])
def test_the_report_is_the_same_for_every_batch_split(rows: int) -> None:
    whole = report_of(_hand_table(), "exp", declared_arms=("control", "treat"), weights={"control": 1, "treat": 1})
    split = report_of(_hand_table(), "exp", rows=rows, declared_arms=("control", "treat"),
                      weights={"control": 1, "treat": 1})
    assert split == whole


def test_the_report_equals_the_in_memory_statistics() -> None:
    """Every mean, interval and Welch test of a generated window equals the same statistics computed from the
    in-memory per-user values: the streaming path changes how sums are gathered, not the numbers."""
    frame = _generated(400, 3)
    sums, arm_of, _ = _in_memory_per_user(frame, "exp")
    impressions, watches = sums["impression"].astype(float), sums["watch"].astype(float)
    values = {"watch_ms": sums["watched_ms"].astype(float),
              "completion_rate": (sums["completion"] / watches)[watches > 0],
              "like_rate": sums["like"] / impressions, "skip_rate": sums["skip"] / impressions,
              "retention": (sums["later_day"] > 0).astype(float)}
    assert set(values) == set(METRICS)
    report = report_of(frame, "exp", rows=50, declared_arms=("a", "b"), weights={"a": 1, "b": 1})
    for metric in report.metrics:
        by_arm = {arm: values[metric.name][arm_of.reindex(values[metric.name].index) == arm].tolist()
                  for arm in ("a", "b")}
        assert metric.arms == [summarise("a", by_arm["a"]), summarise("b", by_arm["b"])], metric.name
        assert metric.comparisons == {"b": compare("b", by_arm["b"], by_arm["a"])}, metric.name
