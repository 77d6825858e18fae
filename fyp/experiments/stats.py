"""The statistics of an experiment report: per-arm means with confidence intervals, each arm against control,
and the sample-ratio-mismatch (SRM) check. Pure: per-user metric values in, numbers out.

- Each metric is averaged per user first (watch time per user, a user's completion rate, ...), so a heavy user
  counts once and the users are the independent units the assignment randomised.
- Confidence interval of a mean: mean +- t(0.975, n-1) * sd / sqrt(n).
- Arm against control: Welch's t-test (unequal variances), two-sided, with the relative lift and its interval
  from the difference's standard error.
- SRM: a chi-square goodness-of-fit test of the users per arm against the declared weights; a p-value below
  0.001 means the split is broken (a bug in assignment, logging or filtering), and the report says not to read
  the metrics (Fabijan et al., "Diagnosing Sample Ratio Mismatch", KDD 2019, use the same threshold).

>>> srm_check({"control": 5000, "v2": 5100}, {"control": 1, "v2": 1}).mismatch
False
>>> srm_check({"control": 5000, "v2": 6000}, {"control": 1, "v2": 1}).mismatch
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

__all__ = ["SRM_P_THRESHOLD", "ArmSummary", "Comparison", "SrmCheck", "compare", "srm_check", "summarise"]

SRM_P_THRESHOLD = 0.001
CONFIDENCE = 0.95


@dataclass(frozen=True, kw_only=True)
class ArmSummary:
    """A metric in one arm: users, mean per user and its 95 % confidence interval."""

    arm: str
    users: int
    mean: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """One arm against control: difference of means, relative lift (None when control's mean is 0), the
    difference's 95 % interval and Welch's two-sided p-value."""

    arm: str
    difference: float
    lift: float | None
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True, kw_only=True)
class SrmCheck:
    users: dict[str, int]
    expected: dict[str, float]
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_P_THRESHOLD


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(variance)


def summarise(arm: str, values: Sequence[float]) -> ArmSummary:
    """The arm's mean per user with its interval; `ValueError` without users."""
    if not values:
        raise ValueError(f"arm {arm!r} has no users")
    mean, sd = _mean_sd(values)
    n = len(values)
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, n - 1)) * sd / math.sqrt(n) if n > 1 else math.inf
    return ArmSummary(arm=arm, users=n, mean=mean, ci_low=mean - half, ci_high=mean + half)


def compare(arm: str, values: Sequence[float], control: Sequence[float]) -> Comparison:
    """`arm` against `control` by Welch's t-test; each needs at least 2 users."""
    if len(values) < 2 or len(control) < 2:
        raise ValueError(f"arm {arm!r} vs control: need >= 2 users each, got {len(values)} and {len(control)}")
    mean_a, sd_a = _mean_sd(values)
    mean_c, sd_c = _mean_sd(control)
    var_a, var_c = sd_a**2 / len(values), sd_c**2 / len(control)
    se = math.sqrt(var_a + var_c)
    difference = mean_a - mean_c
    if se == 0:
        p_value, half = (1.0 if difference == 0 else 0.0), 0.0
    else:
        # Welch-Satterthwaite degrees of freedom
        dof = (var_a + var_c) ** 2 / (var_a**2 / (len(values) - 1) + var_c**2 / (len(control) - 1))
        p_value = float(2 * stats.t.sf(abs(difference) / se, dof))
        half = float(stats.t.ppf((1 + CONFIDENCE) / 2, dof)) * se
    return Comparison(arm=arm, difference=difference, lift=difference / mean_c if mean_c else None,
                      ci_low=difference - half, ci_high=difference + half, p_value=p_value)


def srm_check(users: Mapping[str, int], weights: Mapping[str, float]) -> SrmCheck:
    """Users per arm against the declared weights (arms missing from `users` count 0)."""
    total = sum(users.get(arm, 0) for arm in weights)
    weight_sum = sum(weights.values())
    expected = {arm: total * w / weight_sum for arm, w in weights.items()}
    observed = [users.get(arm, 0) for arm in weights]
    p_value = float(stats.chisquare(observed, list(expected.values())).pvalue) if total else 1.0
    return SrmCheck(users={arm: users.get(arm, 0) for arm in weights}, expected=expected, p_value=p_value)
