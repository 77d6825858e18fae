"""An experiment's report from engagement rows: who was in which arm, each metric per arm with its interval, every
arm against control, and the sample-ratio-mismatch check. Pure: per-user sums in (fyp/experiments/fold.py folds
them from the rows), a report out; the scan of the Iceberg history is `fyp/experiments/history.py`, the command
`fyp experiment report` (docs/FEED.md).

Definitions (docs/FEED.md "Experiment report"):
- A user is in arm A of experiment E when an impression of theirs in the window carries the arm id `E:A`
  (Impression v2 `arms`). Their first exposure is the earliest such impression. A user whose impressions carry two
  arms of E is counted as `conflicted`, reported, and left out of every metric: assignment is deterministic, so
  such a user means a bug or a changed declaration, not noise.
- A user's metrics count their events from their first exposure to the end of the window (any event type, with
  or without arms: the arm applies to the user, not to one response).
- watch_ms: the sum of `watch_ms` of their watch events. completion_rate: completions per watch, a completion
  being a watch of at least COMPLETION_FRACTION (95 %) of the video (features/engagement/common.py); users with
  no watch have no completion rate. like_rate: likes (LIKE minus UNLIKE, as the features count them) per
  impression. skip_rate: skips (dwell under SKIP_DWELL_MS, as the features) per impression. retention: 1 if the
  user has any event on a later UTC day than the day of their first exposure (within the window), else 0.
- Every metric is a mean over users (fyp/experiments/stats.py): the user is the unit the assignment randomised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from features.engagement.common import COMPLETION_FRACTION, SKIP_DWELL_MS
from fyp.experiments.fold import DAY_MS, EVENT_COLUMNS, EXPOSURE_COLUMNS, Exposures
from fyp.experiments.stats import ArmSummary, Comparison, SrmCheck, compare, srm_check, summarise

__all__ = ["COLUMNS", "DAY_MS", "METRICS", "ArmCount", "ExperimentReport", "MetricResult", "ReportError",
           "build_report"]

# The engagement-row columns the report reads, over its two passes.
COLUMNS = tuple(dict.fromkeys(EVENT_COLUMNS + EXPOSURE_COLUMNS))
METRICS: dict[str, str] = {
    "watch_ms": "milliseconds watched per user (first plays)",
    "completion_rate": f"completions per watch (>= {COMPLETION_FRACTION:.0%} of the video), per user",
    "like_rate": "likes (LIKE - UNLIKE) per impression, per user",
    "skip_rate": f"skips (dwell < {SKIP_DWELL_MS} ms) per impression, per user",
    "retention": "share of users active on a later UTC day than their first exposure",
}
MAX_CONFLICT_SAMPLES = 10


class ReportError(ValueError):
    """Nothing to report (no exposure in the window) or a bad request (unknown control arm)."""


@dataclass(frozen=True, kw_only=True)
class ArmCount:
    """One arm's users (exposed, not conflicted) and their impressions from first exposure on."""

    arm: str
    users: int
    impressions: int
    declared: bool


@dataclass(frozen=True, kw_only=True)
class MetricResult:
    """One metric: each arm's mean per user with its interval (None: no user has it), and each other arm against
    control (None: fewer than 2 users on a side)."""

    name: str
    description: str
    arms: list[ArmSummary | None]
    comparisons: dict[str, Comparison | None]


@dataclass(frozen=True, kw_only=True)
class ExperimentReport:
    experiment: str
    since_ms: int | None
    until_ms: int | None
    control: str
    control_source: str  # "declared" (its first arm), "option" (--control) or "undeclared" (see build_report)
    weights_source: str  # "declared" or "equal" (the experiment is not declared: SRM against an equal split)
    arms: list[ArmCount]
    conflicted_users: int
    conflicted_samples: list[str]
    metrics: list[MetricResult]
    srm: SrmCheck
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: infinities and NaN (an interval of one user) become None."""
        data = asdict(self)
        data["srm"]["mismatch"] = self.srm.mismatch
        return _finite(data)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _values(per_user: pd.DataFrame) -> dict[str, pd.Series]:
    impressions = per_user["impression"].astype(float)
    watches = per_user["watch"].astype(float)
    return {
        "watch_ms": per_user["watched_ms"].astype(float),
        "completion_rate": (per_user["completion"] / watches)[watches > 0],
        "like_rate": per_user["like"] / impressions,
        "skip_rate": per_user["skip"] / impressions,
        "retention": (per_user["later_day"] > 0).astype(float),
    }


def build_report(exposures: Exposures, per_user: pd.DataFrame, experiment: str, *,
                 declared_arms: Sequence[str] = (), weights: Mapping[str, float] | None = None,
                 control: str | None = None, since_ms: int | None = None,
                 until_ms: int | None = None) -> ExperimentReport:
    """The report of `experiment` from the two folds of the window [since_ms, until_ms) (fyp/experiments/fold.py:
    `exposures` from pass 1, `per_user` the SUMS of pass 2 for `exposures.first`); the window is only echoed.

    declared_arms / weights: the declaration's arms in order and their weights (empty / None when the experiment
    is not declared: arms are those seen, sorted, and the SRM check assumes an equal split). control: the arm
    the others are compared with; default the first declared arm, else an arm named `control`, else the first
    seen. Raises ReportError when no impression carries an arm of `experiment`, or `control` is not an arm.
    """
    if exposures.empty:
        declared = "declared but " if declared_arms else "not declared in fyp/experiments/declared.py and "
        raise ReportError(f"experiment {experiment!r} is {declared}no impression in the window carries one of "
                          f"its arm ids ('{experiment}:<arm>')")
    conflicted, arm_of = exposures.conflicted, exposures.arm_of
    seen = sorted(set(arm_of))
    arms = list(declared_arms) + [a for a in seen if a not in declared_arms]
    notes: list[str] = []
    if declared_arms:
        control_source = "declared"
        chosen = declared_arms[0]
    else:
        control_source = "undeclared"
        chosen = "control" if "control" in arms else arms[0]
        notes.append(f"{experiment!r} is not declared: the arms are those seen, control is {chosen!r}, and the "
                     "SRM check assumes an equal split")
    if control is not None:
        if control not in arms:
            raise ReportError(f"control arm {control!r} is not an arm of {experiment!r}: {arms}")
        chosen, control_source = control, "option"
    if undeclared := [a for a in seen if declared_arms and a not in declared_arms]:
        notes.append(f"arm ids not in the declaration: {undeclared} (reported, left out of the SRM check)")
    if conflicted:
        notes.append(f"{len(conflicted)} users carry two or more arms of {experiment!r}: left out of every metric")
    values = _values(per_user)
    users_of = {arm: arm_of.index[arm_of == arm] for arm in arms}
    counts = [ArmCount(arm=arm, users=len(users_of[arm]),
                       impressions=int(per_user.loc[users_of[arm], "impression"].sum()),
                       declared=arm in declared_arms) for arm in arms]
    metrics = []
    for name, description in METRICS.items():
        series = values[name]
        by_arm = {arm: series[series.index.isin(users_of[arm])].tolist() for arm in arms}
        summaries = [summarise(arm, by_arm[arm]) if by_arm[arm] else None for arm in arms]
        comparisons = {arm: compare(arm, by_arm[arm], by_arm[chosen])
                       if len(by_arm[arm]) >= 2 and len(by_arm[chosen]) >= 2 else None
                       for arm in arms if arm != chosen}
        metrics.append(MetricResult(name=name, description=description, arms=summaries, comparisons=comparisons))
    weights_source = "declared" if weights else "equal"
    srm = srm_check({c.arm: c.users for c in counts},
                    dict(weights) if weights else dict.fromkeys(arms, 1.0))
    if srm.mismatch:
        notes.append(f"sample ratio mismatch (p = {srm.p_value:.2g} < 0.001): the split is broken, do not read the "
                     "metrics")
    return ExperimentReport(
        experiment=experiment, since_ms=since_ms, until_ms=until_ms, control=chosen, control_source=control_source,
        weights_source=weights_source, arms=counts, conflicted_users=len(conflicted),
        conflicted_samples=conflicted[:MAX_CONFLICT_SAMPLES], metrics=metrics, srm=srm, notes=notes)
