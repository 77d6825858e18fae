"""The exploration policy, decision rule, decision records and job flags (pure; the SQL runs in tests/flink)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.exploration import EXPLORATION_COUNTERS
from featurespec.sql import counters_query
from schemas.registry import default_registry
from udfs.exploration import (
    DEMOTE,
    PROMOTE,
    Counters,
    ExplorationPolicy,
    decide,
    decision_event_id,
    decision_payload,
    decision_sql,
    parse_policy,
)

POLICY = ExplorationPolicy(min_impressions=10, promote_completion_rate=0.5, promote_like_rate=0.1,
                           demote_completion_rate=0.2, demote_like_rate=0.02)


def counters(impressions=10, plays=10, completions=5, likes=1, age_ms=0) -> Counters:
    return Counters(first_seen_ms=1_000, event_time_ms=1_000 + age_ms, impressions=impressions, plays=plays,
                    completions=completions, likes=likes)


@pytest.mark.parametrize(("c", "expected"), [
    (counters(), PROMOTE),  # exactly at both promote thresholds
    (counters(impressions=9, likes=1), None),  # too few impressions
    (counters(completions=4), None),  # between the thresholds
    (counters(completions=1), DEMOTE),  # completion rate 0.1 < 0.2
    (counters(impressions=100, likes=1), DEMOTE),  # like rate 0.01 < 0.02
    (counters(plays=0, completions=0), DEMOTE),  # impressions, no plays at all: completion rate 0
    (counters(age_ms=24 * 3600 * 1000), None),  # no longer new
    (counters(age_ms=24 * 3600 * 1000 - 1), PROMOTE),
])
def test_decide(c, expected):
    assert decide(c, POLICY) == expected


@given(impressions=st.integers(0, 500), plays=st.integers(0, 500), completions=st.integers(0, 500),
       likes=st.integers(-5, 500), age_ms=st.integers(0, 2 * 86_400_000))
def test_decide_follows_the_documented_rule(impressions, plays, completions, likes, age_ms):
    c = counters(impressions=impressions, plays=plays, completions=min(completions, plays), likes=likes,
                 age_ms=age_ms)
    decision = decide(c, POLICY)
    eligible = impressions >= POLICY.min_impressions and age_ms < POLICY.max_age_ms
    completion = c.completions / plays if plays else 0.0
    like = likes / impressions if impressions else 0.0
    promote = completion >= 0.5 and like >= 0.1
    demote = completion < 0.2 or like < 0.02
    assert not (promote and demote)  # demote thresholds below promote ones: never both
    assert decision == (None if not eligible else PROMOTE if promote else DEMOTE if demote else None)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"min_impressions": 0}, "min_impressions"),
    ({"max_age": timedelta(0)}, "max_age"),
    ({"promote_like_rate": 1.5}, "promote_like_rate"),
    ({"demote_completion_rate": 0.9}, "must not exceed"),
    ({"state_ttl": timedelta(hours=1)}, "shorter than max_age"),
])
def test_policy_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExplorationPolicy(**kwargs)


def test_flags_override_the_defaults_and_leave_others_alone():
    policy = parse_policy(["--min-impressions", "5", "--max-age", "2h", "--promote-like-rate", "0.2",
                           "--state-ttl", "1d", "--topic", "other", "--group-id", "g"])
    assert policy == ExplorationPolicy(min_impressions=5, max_age=timedelta(hours=2), promote_like_rate=0.2,
                                       state_ttl=timedelta(days=1))
    assert parse_policy([]) == ExplorationPolicy()


def test_decision_records_decode_with_a_stable_event_id():
    payload = decision_payload(video_id="v1", author_id="a1", decision=PROMOTE, event_time_ms=5,
                               impressions=12, completion_rate=0.75, like_rate=0.25)
    event = default_registry().decode(payload)
    assert event.record_name == "ExplorationDecision"
    assert event.record["decision"] == "PROMOTE" and event.record["impressions"] == 12
    assert event.record["event_id"] == decision_event_id("v1") != decision_event_id("v2")


def test_sql_uses_the_policy_and_the_feature_predicates():
    sql = decision_sql(POLICY)
    assert "impressions >= 10" in sql and "< 86400000" in sql and ">= 0.5" in sql and "< 0.02" in sql
    query = counters_query("engagement", EXPLORATION_COUNTERS)
    assert EXPLORATION_COUNTERS["completions"].where in query
    assert "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW" in query
    with pytest.raises(ValueError, match="lack"):
        counters_query("engagement", {"plays": EXPLORATION_COUNTERS["plays"]})
