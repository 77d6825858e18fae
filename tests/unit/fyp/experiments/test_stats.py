"""Experiment report statistics against scipy's own tests and known cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fyp.experiments.stats import compare, srm_check, summarise


def test_summary_interval_matches_scipy() -> None:
    values = np.random.default_rng(1).exponential(30, size=500).tolist()
    summary = summarise("control", values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (summary.users, summary.mean) == (500, pytest.approx(np.mean(values)))
    assert (summary.ci_low, summary.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_welch_matches_scipy_and_finds_a_real_lift() -> None:
    rng = np.random.default_rng(2)
    control, better = rng.normal(10, 3, 4000).tolist(), rng.normal(10.5, 3, 4000).tolist()
    result = compare("v2", better, control)
    assert result.p_value == pytest.approx(stats.ttest_ind(better, control, equal_var=False).pvalue)
    assert result.p_value < 0.001 and result.ci_low > 0 and result.lift == pytest.approx(0.05, abs=0.02)


def test_no_difference_is_mostly_not_significant() -> None:
    """Under the null, about 5 % of experiments come out p < 0.05 (a check of the test's calibration)."""
    rng = np.random.default_rng(3)
    significant = sum(compare("b", rng.normal(0, 1, 200).tolist(), rng.normal(0, 1, 200).tolist()).p_value < 0.05
                      for _ in range(400))
    assert 8 <= significant <= 36  # 20 expected; binomial(400, 0.05) is within this range 99.9 % of the time


def test_srm_flags_a_broken_split_only() -> None:
    assert not srm_check({"control": 5012, "v2": 4988}, {"control": 1, "v2": 1}).mismatch
    assert not srm_check({"a": 2480, "b": 7520}, {"a": 1, "b": 3}).mismatch
    broken = srm_check({"control": 5000, "v2": 4600}, {"control": 1, "v2": 1})
    assert broken.mismatch and broken.expected == {"control": 4800, "v2": 4800}
    assert srm_check({"control": 10}, {"control": 1, "v2": 1}).users == {"control": 10, "v2": 0}


def test_too_few_users_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no users"):
        summarise("a", [])
    with pytest.raises(ValueError, match="need >= 2 users"):
        compare("a", [1.0], [1.0, 2.0])
