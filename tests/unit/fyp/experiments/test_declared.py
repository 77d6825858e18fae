"""The declared experiment: it validates, applies to every user from its start, splits users about evenly
between its two arms, and its treatment arm's override is one the feed's ranker accepts."""

from __future__ import annotations

from fyp.experiments.assign import assign_user, merged_overrides
from fyp.experiments.declared import EXPERIMENTS, RANKER_WEIGHTS_FOLLOW
from fyp.ranking.combine import DEFAULT_HEAD_WEIGHTS, head_weights

AFTER_START = RANKER_WEIGHTS_FOLLOW.start_ms + 1


def test_one_experiment_is_declared_in_the_ranking_layer() -> None:
    assert [e.name for e in EXPERIMENTS] == ["ranker_weights_follow"]
    assert RANKER_WEIGHTS_FOLLOW.layer == "ranking" and RANKER_WEIGHTS_FOLLOW.traffic_percent == 100
    assert RANKER_WEIGHTS_FOLLOW.arm_names() == ("control", "follow8")


def test_every_user_gets_one_arm_and_the_arms_split_users_evenly() -> None:
    arms = [assign_user(f"u{i}", EXPERIMENTS, now_ms=AFTER_START) for i in range(4_000)]
    assert all(len(a) == 1 for a in arms)
    follow8 = sum(a[0].arm == "follow8" for a in arms)
    assert 1_850 < follow8 < 2_150, follow8  # binomial(4000, 0.5): 2000 +- 4.7 sd
    assert assign_user("u1", EXPERIMENTS, now_ms=RANKER_WEIGHTS_FOLLOW.start_ms - 1) == ()


def test_the_arms_weights_are_the_defaults_and_a_doubled_follow() -> None:
    weights = {}
    for i in range(50):
        assignment = assign_user(f"u{i}", EXPERIMENTS, now_ms=AFTER_START)
        weights[assignment[0].arm_id] = head_weights(merged_overrides(assignment, EXPERIMENTS))
    assert weights["ranker_weights_follow:control"] == dict(DEFAULT_HEAD_WEIGHTS)
    assert weights["ranker_weights_follow:follow8"] == {**DEFAULT_HEAD_WEIGHTS, "followed": 8.0}
