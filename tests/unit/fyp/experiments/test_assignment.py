"""Experiment declarations and assignment: deterministic, balanced by weight, one experiment per layer, and
layers independent of each other (chi-square tests over 100k users)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from scipy.stats import chi2_contingency, chisquare

from fyp.experiments.assign import assign_user, layer_bucket, merged_overrides, unit_hash
from fyp.experiments.spec import BUCKETS, Arm, Experiment, check_layers

USERS = [f"u{i}" for i in range(100_000)]
P_FLOOR = 0.001  # fails about once in 1,000 for a fair hash: the users are fixed, so a pass is reproducible


def _exp(name: str = "ranker_v2", *, layer: str = "ranking", weights: tuple[int, ...] = (1, 1),
         traffic: float = 100, start: int = 0, end: int | None = None) -> Experiment:
    arms = [Arm(name=f"arm{i}", weight=w) for i, w in enumerate(weights)]
    return Experiment(name=name, layer=layer, arms=arms, traffic_percent=traffic, start_ms=start, end_ms=end)


def test_the_same_user_always_gets_the_same_arm_and_different_salts_reshuffle() -> None:
    exp = _exp()
    first = [assign_user(u, [exp], now_ms=5) for u in USERS[:2000]]
    assert first == [assign_user(u, [exp], now_ms=5) for u in USERS[:2000]]
    resalted = Experiment(name=exp.name, layer=exp.layer, arms=exp.arms, traffic_percent=100, start_ms=0, salt="r2")
    moved = sum(a != b for a, b in zip(first, (assign_user(u, [resalted], now_ms=5) for u in USERS[:2000]),
                                       strict=True))
    assert 800 < moved < 1200  # a fresh salt re-deals about half the users between two arms


@pytest.mark.parametrize("weights", [(1, 1), (1, 3), (1, 1, 1, 1, 1), (5, 3, 2)])
def test_arms_split_users_by_weight(weights: tuple[int, ...]) -> None:
    exp = _exp(weights=weights)
    counts = Counter(assign_user(u, [exp], now_ms=1)[0].arm for u in USERS)
    observed = [counts[f"arm{i}"] for i in range(len(weights))]
    expected = [len(USERS) * w / sum(weights) for w in weights]
    assert chisquare(observed, expected).pvalue > P_FLOOR, (observed, expected)


def test_a_layers_experiments_take_their_share_and_never_share_a_user() -> None:
    small, big = _exp("small", traffic=10), _exp("big", traffic=30)
    per_user = [assign_user(u, [small, big], now_ms=1) for u in USERS]
    assert all(len(found) <= 1 for found in per_user)
    counts = Counter(found[0].experiment if found else None for found in per_user)
    expected = [0.1 * len(USERS), 0.3 * len(USERS), 0.6 * len(USERS)]
    assert chisquare([counts["small"], counts["big"], counts[None]], expected).pvalue > P_FLOOR, counts


def test_layers_are_independent() -> None:
    ranking, ui = _exp("ranking_test", layer="ranking", weights=(1, 1, 1)), _exp("ui_test", layer="ui")
    table = Counter()
    for user in USERS:
        arms = {a.layer: a.arm for a in assign_user(user, [ranking, ui], now_ms=1)}
        table[arms["ranking"], arms["ui"]] += 1
    contingency = [[table[f"arm{r}", f"arm{c}"] for c in range(2)] for r in range(3)]
    assert chi2_contingency(contingency).pvalue > P_FLOOR, contingency
    # the buckets of two layers are independent too (a user's slot in one says nothing of the other)
    same_half = sum((layer_bucket("ranking", u) < BUCKETS // 2) == (layer_bucket("ui", u) < BUCKETS // 2)
                    for u in USERS)
    assert abs(same_half - len(USERS) / 2) < 4 * (len(USERS) ** 0.5) / 2


def test_only_running_experiments_assign_and_the_bucket_range_stays_reserved() -> None:
    ended, current = _exp("old", traffic=50, start=0, end=100), _exp("new", traffic=50, start=100)
    before = {u: assign_user(u, [ended, current], now_ms=50) for u in USERS[:5000]}
    after = {u: assign_user(u, [ended, current], now_ms=150) for u in USERS[:5000]}
    assert {a.experiment for found in before.values() for a in found} == {"old"}
    assert {a.experiment for found in after.values() for a in found} == {"new"}
    # nobody who was in "old" lands in "new": its users keep their buckets and are in neither
    assert not any(before[u] and after[u] for u in before)


def test_arm_ids_and_merged_overrides() -> None:
    ranking = Experiment(name="ranker_v2", layer="ranking", arms=(
        Arm(name="control"), Arm(name="v2", overrides={"ranker.model": "v2"})), traffic_percent=100, start_ms=0)
    ui = Experiment(name="slots", layer="ui", arms=(
        Arm(name="three", overrides={"feed.fresh_slots": 3}), Arm(name="one", overrides={"feed.fresh_slots": 1})),
        traffic_percent=100, start_ms=0)
    found = assign_user("u7", [ranking, ui], now_ms=1)
    assert sorted(a.arm_id.split(":")[0] for a in found) == ["ranker_v2", "slots"]
    merged = merged_overrides(found, [ranking, ui])
    assert merged["feed.fresh_slots"] in (1, 3)
    clash = Experiment(name="clash", layer="other", arms=(
        Arm(name="a", overrides={"feed.fresh_slots": 9}), Arm(name="b", overrides={"feed.fresh_slots": 9})),
        traffic_percent=100, start_ms=0)
    with pytest.raises(ValueError, match=re.escape("both set 'feed.fresh_slots'")):
        merged_overrides(assign_user("u7", [ranking, ui, clash], now_ms=1), [ranking, ui, clash])


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Experiment(name="Bad-Name", layer="l", arms=(Arm(name="a"), Arm(name="b")), traffic_percent=1,
                        start_ms=0), "experiment name 'Bad-Name'"),
    (lambda: Experiment(name="one_arm", layer="l", arms=(Arm(name="a"),), traffic_percent=1, start_ms=0),
     "1 arms"),
    (lambda: Experiment(name="dup", layer="l", arms=(Arm(name="a"), Arm(name="a")), traffic_percent=1,
                        start_ms=0), "arm names repeat"),
    (lambda: Experiment(name="share", layer="l", arms=(Arm(name="a"), Arm(name="b")), traffic_percent=0,
                        start_ms=0), "traffic_percent 0"),
    (lambda: Experiment(name="fine", layer="l", arms=(Arm(name="a"), Arm(name="b")), traffic_percent=0.001,
                        start_ms=0), "steps of 0.01"),
    (lambda: Experiment(name="time", layer="l", arms=(Arm(name="a"), Arm(name="b")), traffic_percent=1,
                        start_ms=5, end_ms=5), "not after start_ms"),
    (lambda: Arm(name="w", weight=0), "weight must be > 0"),
    (lambda: check_layers([_exp("x", traffic=60), _exp("y", traffic=50)]), "take 110.0 %"),
    (lambda: check_layers([_exp("x", traffic=10), _exp("x", layer="other", traffic=10)]), "names repeat"),
    (lambda: unit_hash("s", ""), "1..128 bytes"),
    (lambda: unit_hash("s", "u" * 129), "1..128 bytes"),
])
def test_bad_declarations_are_refused_with_a_clear_error(build, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build()
