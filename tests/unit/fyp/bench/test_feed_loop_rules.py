"""The pure rules of `fyp bench feed-loop` (fyp/bench/feed_loop_rules.py) and its run plan, on plain data."""

from __future__ import annotations

import itertools
import math

import pytest

from fyp.bench.feed_loop import MAX_PROBES, SPARE_VIDEOS, LoopWorld
from fyp.bench.feed_loop_rules import (
    fine_scores,
    fine_scores_changed,
    has_left_feed,
    outcome_summary,
    poll_delays,
    user_features_reflect,
)


def test_the_polls_start_dense_then_keep_a_capped_gap_up_to_the_timeout():
    delays = list(poll_delays(first_ms=10, factor=2, cap_ms=100, timeout_ms=1_000))
    assert delays[:6] == [10, 30, 70, 150, 250, 350]
    gaps = [b - a for a, b in itertools.pairwise(delays)]
    assert all(a <= b for a, b in itertools.pairwise(gaps)) and max(gaps) == 100
    assert delays[-1] <= 1_000 and delays[-1] + 100 > 1_000  # nothing after the timeout, nothing left short of it


def test_the_poll_schedule_refuses_a_nonsense_plan():
    for bad in ({"first_ms": 0}, {"factor": 0.5}, {"cap_ms": -1}, {"timeout_ms": 0}):
        with pytest.raises(ValueError):
            next(poll_delays(**bad))


def body(*videos: str, fine: float | None = 0.5, shortlist: tuple[str, ...] | None = None) -> dict:
    found = {"items": [{"video_id": v, "fine": fine} for v in videos]}
    return found if shortlist is None else {**found, "explain": {"shortlist": list(shortlist)}}


def test_a_video_has_left_the_feed_only_when_neither_an_item_nor_shortlisted():
    assert not has_left_feed(body("v1", "v2"), "v1")
    assert has_left_feed(body("v2"), "v1")
    # Beyond the page but still scored: not gone yet.
    assert not has_left_feed(body("v2", shortlist=("v2", "v1")), "v1")
    assert has_left_feed(body("v2", shortlist=("v2",)), "v1")


def test_fine_scores_are_read_per_video_and_none_without_a_model():
    assert fine_scores(body("v1", "v2", fine=0.25)) == {"v1": 0.25, "v2": 0.25}
    assert fine_scores(body("v1", "v2"), among={"v2", "v9"}) == {"v2": 0.5}
    assert fine_scores(body("v1", fine=None)) == {}


def test_a_score_change_is_any_common_video_moving_past_the_rounding():
    before = {"v1": 0.5, "v2": 0.25}
    assert fine_scores_changed(before, {"v1": 0.5, "v2": 0.25}) is False
    assert fine_scores_changed(before, {"v1": 0.5 + 5e-7}) is False  # the feed's 6-decimal rounding alone
    assert fine_scores_changed(before, {"v1": 0.5, "v2": 0.250002}) is True
    assert fine_scores_changed(before, {"v3": 0.9}) is None  # nothing in common: unknown, not "unchanged"
    assert fine_scores_changed({}, {"v1": 0.1}) is None


def test_the_user_features_reflect_a_watch_from_its_event_time_on():
    assert not user_features_reflect(None, 1_000)
    assert not user_features_reflect(999, 1_000)  # the impression one ms before, or older events
    assert user_features_reflect(1_000, 1_000) and user_features_reflect(1_500, 1_000)


def test_the_summary_counts_missing_probes_beside_the_percentiles():
    summary = outcome_summary([float(i) for i in range(1, 101)], 3)
    assert summary["samples"] == 100 and summary["missing"] == 3
    assert summary["p50_ms"] == pytest.approx(50.5) and summary["p99_ms"] == pytest.approx(99.01)
    assert summary["max_ms"] == 100
    nothing = outcome_summary([], 5)
    assert nothing["samples"] == 0 and nothing["missing"] == 5 and math.isnan(nothing["p99_ms"])
    with pytest.raises(ValueError):
        outcome_summary([1.0, float("nan")], 0)
    with pytest.raises(ValueError):
        outcome_summary([1.0], -1)


def test_a_run_plan_has_one_video_per_probe_beside_the_setup_video_and_spares():
    world = LoopWorld.plan(probes=20, users=4, run="abc12345")
    assert len(world.users) == 4 and len(set(world.users)) == 4
    assert len(world.videos) == 1 + 20 + SPARE_VIDEOS and len(set(world.videos)) == len(world.videos)
    assert world.market == "ZL:flabc12345"
    assert len({world.author(v) for v in world.videos}) == len(world.videos)
    for probes, users in ((0, 1), (MAX_PROBES + 1, 1), (5, 6), (5, 0)):
        with pytest.raises(ValueError):
            LoopWorld.plan(probes=probes, users=users)
