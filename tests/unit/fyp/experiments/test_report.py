"""The experiment report's arithmetic on plain tables: a case small enough to count by hand, a case where the sign
of the difference is known, the SRM check against declared weights, and the errors."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from fyp.experiments.fold import fold_exposures, fold_user_sums
from fyp.experiments.report import COLUMNS, DAY_MS, ExperimentReport, ReportError, build_report

T0 = 19_675 * DAY_MS  # midnight UTC


def _event(kind: str, user: str, t: int, *, arms: list[str] | None = None, watch: int | None = None,
           duration: int | None = None, dwell: int | None = None, action: str | None = None) -> dict[str, Any]:
    return {"event_type": kind, "user_id": user, "event_time": t, "watch_ms": watch, "video_duration_ms": duration,
            "dwell_ms": dwell, "action": action, "arms": arms or []}


def _hand_table() -> pd.DataFrame:
    rows = [
        # u1, control: a watch before exposure (not counted), then 3 impressions, a completion, a like, next day.
        _event("watch", "u1", T0, watch=5_000, duration=10_000),
        _event("impression", "u1", T0 + 1_000, arms=["exp:control"]),
        _event("watch", "u1", T0 + 1_500, watch=9_600, duration=10_000),
        _event("like", "u1", T0 + 1_600, action="LIKE"),
        _event("impression", "u1", T0 + 5_000),
        _event("impression", "u1", T0 + DAY_MS + 1),
        # u2, control: one impression, a 30 % watch, a skip; never back.
        _event("impression", "u2", T0 + 2_000, arms=["exp:control"]),
        _event("watch", "u2", T0 + 2_500, watch=3_000, duration=10_000),
        _event("skip", "u2", T0 + 2_600, dwell=500, duration=10_000),
        # u3, treat (and in another experiment): 2 impressions, 2 watches (one complete), a like taken back.
        _event("impression", "u3", T0 + 1_000, arms=["exp:treat", "other:a"]),
        _event("watch", "u3", T0 + 1_100, watch=10_000, duration=10_000),
        _event("watch", "u3", T0 + 1_200, watch=2_000, duration=10_000),
        _event("like", "u3", T0 + 1_300, action="LIKE"),
        _event("like", "u3", T0 + 1_400, action="UNLIKE"),
        _event("impression", "u3", T0 + 3_000, arms=["exp:treat"]),
        # u4, treat: one impression, a long dwell (not a skip), no watch, a like two days later.
        _event("impression", "u4", T0 + 1_000, arms=["exp:treat"]),
        _event("skip", "u4", T0 + 1_100, dwell=3_000, duration=10_000),
        _event("like", "u4", T0 + 2 * DAY_MS, action="LIKE"),
        # u5: both arms, a conflict. u6: in no experiment.
        _event("impression", "u5", T0 + 1_000, arms=["exp:control"]),
        _event("impression", "u5", T0 + 2_000, arms=["exp:treat"]),
        _event("impression", "u6", T0 + 1_000, arms=["other:b"]),
        _event("watch", "u6", T0 + 1_100, watch=1_000, duration=10_000),
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def batches_of(frame: pd.DataFrame, rows: int | None = None) -> list[pa.RecordBatch]:
    """`frame` as Arrow record batches of `rows` rows each (one batch when None)."""
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    step = rows or max(batch.num_rows, 1)
    return [batch.slice(start, step) for start in range(0, batch.num_rows, step)]


def report_of(frame: pd.DataFrame, experiment: str, *, rows: int | None = None, **options: Any) -> ExperimentReport:
    """Both folds over `frame` in batches of `rows`, then the report: what `fyp experiment report` does."""
    batches = batches_of(frame, rows)
    exposures = fold_exposures(batches, experiment)
    return build_report(exposures, fold_user_sums(batches, exposures.first), experiment, **options)


def _metric(report, name: str):
    return next(m for m in report.metrics if m.name == name)


def test_a_hand_counted_case() -> None:
    report = report_of(_hand_table(), "exp", declared_arms=("control", "treat"), weights={"control": 1, "treat": 1})
    assert report.control == "control" and report.control_source == "declared"
    assert [(a.arm, a.users, a.impressions) for a in report.arms] == [("control", 2, 4), ("treat", 2, 3)]
    assert (report.conflicted_users, report.conflicted_samples) == (1, ["u5"])
    expected = {  # per arm: the per-user values counted by hand above
        "watch_ms": ([9_600, 3_000], [12_000, 0]),
        "completion_rate": ([1.0, 0.0], [0.5]),  # u4 has no watch
        "like_rate": ([1 / 3, 0.0], [0.0, 1.0]),
        "skip_rate": ([0.0, 1.0], [0.0, 0.0]),
        "retention": ([1.0, 0.0], [0.0, 1.0]),
    }
    for name, (control, treat) in expected.items():
        metric = _metric(report, name)
        for summary, values in zip(metric.arms, (control, treat), strict=True):
            assert summary.users == len(values)
            assert summary.mean == pytest.approx(np.mean(values)), name
            if len(values) > 1:
                half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
                assert (summary.ci_low, summary.ci_high) == pytest.approx((np.mean(values) - half,
                                                                           np.mean(values) + half)), name
        comparison = metric.comparisons["treat"]
        if len(treat) < 2:
            assert comparison is None  # one user: no test
        else:
            assert comparison.difference == pytest.approx(np.mean(treat) - np.mean(control)), name
            if np.std(treat) + np.std(control) > 0:
                welch = stats.ttest_ind(treat, control, equal_var=False).pvalue
                assert comparison.p_value == pytest.approx(welch), name
    assert report.srm.users == {"control": 2, "treat": 2} and not report.srm.mismatch
    assert any("1 users carry two or more arms" in note for note in report.notes)
    json.dumps(report.to_dict())  # plain JSON: the one-user interval's infinities become null


def test_the_sign_of_a_known_difference() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(400):
        arm = "control" if i % 2 else "longer"
        user = f"u{i}"
        rows.append(_event("impression", user, T0 + i, arms=[f"exp:{arm}"]))
        watched = int(np.clip(rng.normal(4_000 if arm == "control" else 6_000, 1_000), 0, 10_000))
        rows.append(_event("watch", user, T0 + i + 1, watch=watched, duration=10_000))
    report = report_of(pd.DataFrame(rows, columns=list(COLUMNS)), "exp", control="control")
    assert report.control_source == "option" and report.weights_source == "equal"
    watch = _metric(report, "watch_ms").comparisons["longer"]
    assert 1_700 < watch.difference < 2_300 and watch.ci_low > 0 and watch.p_value < 1e-10
    assert watch.lift == pytest.approx(watch.difference / _metric(report, "watch_ms").arms[0].mean)
    # Swapping the control flips the sign.
    flipped = report_of(pd.DataFrame(rows, columns=list(COLUMNS)), "exp", control="longer")
    assert _metric(flipped, "watch_ms").comparisons["control"].difference == pytest.approx(-watch.difference)


def test_srm_against_the_declared_weights() -> None:
    rows = [_event("impression", f"u{i}", T0 + i, arms=["exp:a" if i < 400 else "exp:b"]) for i in range(1_000)]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    assert report_of(table, "exp", declared_arms=("a", "b"), weights={"a": 1, "b": 1}).srm.mismatch
    fair = report_of(table, "exp", declared_arms=("a", "b"), weights={"a": 2, "b": 3})
    assert not fair.srm.mismatch and fair.srm.expected == {"a": 400.0, "b": 600.0}
    # A declared arm nobody saw still counts, with 0 users.
    three = report_of(table, "exp", declared_arms=("a", "b", "c"), weights={"a": 2, "b": 3, "c": 1})
    assert [a.users for a in three.arms] == [400, 600, 0] and three.srm.mismatch
    assert _metric(three, "retention").arms[2] is None


def test_errors_are_clear() -> None:
    table = _hand_table()
    with pytest.raises(ReportError, match=r"'nope' is not declared .* no impression in the window carries"):
        report_of(table, "nope")
    with pytest.raises(ReportError, match="control arm 'treatment' is not an arm of 'exp'"):
        report_of(table, "exp", control="treatment")
    with pytest.raises(ValueError, match=r"lacks columns \['arms'\]"):
        report_of(table.drop(columns=["arms"]), "exp")


def test_undeclared_experiments_pick_the_arm_named_control() -> None:
    report = report_of(_hand_table(), "exp")
    assert (report.control, report.control_source, report.weights_source) == ("control", "undeclared", "equal")
    assert "not declared" in report.notes[0]


def test_every_arm_id_a_declaration_can_make_passes_the_event_rule() -> None:
    """udfs/limits.py cannot import fyp: its arm-id limits are held to fyp/experiments/spec.py here."""
    from fyp.experiments.assign import Assignment
    from fyp.experiments.spec import MAX_NAME_CHARS, Arm, Experiment
    from udfs.limits import MAX_ARM_ID_BYTES, field_error, valid_arm_id

    longest = "e" * MAX_NAME_CHARS
    exp = Experiment(name=longest, layer="l", arms=(Arm(name="a" * MAX_NAME_CHARS), Arm(name="b_2")),
                     traffic_percent=100, start_ms=0)
    ids = [Assignment(experiment=exp.name, layer=exp.layer, arm=arm).arm_id for arm in exp.arm_names()]
    assert all(valid_arm_id(i) for i in ids) and max(len(i.encode()) for i in ids) == MAX_ARM_ID_BYTES
    assert field_error({"arms": ids}) is None
