"""The exploration job's SQL on in-memory payloads: counters, the decision rule, one decision per video."""

from __future__ import annotations

import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.exploration import exploration_views
from schemas.registry import default_registry
from tests.flink.conftest import new_t_env, raw_view
from udfs.exploration import Counters, ExplorationPolicy, decide

NOW = int(time.time() * 1000)
POLICY = ExplorationPolicy(min_impressions=4, promote_completion_rate=0.5, promote_like_rate=0.25,
                           demote_completion_rate=0.2, demote_like_rate=0.1)


def _event(record_name: str, video_id: str, offset_ms: int = 0, **fields) -> bytes:
    record = {"event_id": str(uuid.uuid4()), "event_time": NOW + offset_ms, "user_id": "u1", "video_id": video_id,
              "author_id": f"a-{video_id}", "sound_id": None, "region": "US", "language": "en", "session_id": "s1",
              "hashtags": [], **fields}
    return default_registry().encode(record_name, record)


def _views(t_env, payloads: list[bytes], policy: ExplorationPolicy = POLICY):
    raw_view(t_env, payloads)
    exploration_views(t_env, "raw", policy)
    return t_env


def _view(video: str, *, completes: bool, likes: bool, views: int = 5) -> list[bytes]:
    events = []
    for i in range(views):
        events.append(_event("Impression", video, i * 10, position=i, surface="for_you"))
        events.append(_event("Watch", video, i * 10 + 1, watch_ms=10_000 if completes else 1_000,
                             video_duration_ms=10_000))
        if likes:
            events.append(_event("Like", video, i * 10 + 2, action="LIKE"))
    return events


def _decisions(t_env) -> list[tuple]:
    query = "SELECT video_id, author_id, decision, impressions, completion_rate, like_rate FROM decisions"
    with t_env.sql_query(query).execute().collect() as rows:
        return sorted(tuple(row) for row in rows)


def test_good_videos_are_promoted_bad_ones_demoted_each_once(t_env):
    payloads = [*_view("good", completes=True, likes=True), *_view("bad", completes=False, likes=False),
                *_view("meh", completes=True, likes=False, views=2),  # too few impressions: undecided
                b"\x00garbage"]
    decisions = _decisions(_views(t_env, payloads))
    # Decided at the 4th impression: good had 3 complete plays and 3 likes then; bad had 3 short plays.
    assert decisions == [("bad", "a-bad", "DEMOTE", 4, 0.0, 0.0), ("good", "a-good", "PROMOTE", 4, 1.0, 0.75)]


def test_old_videos_are_not_decided(t_env):
    first = _event("Impression", "old", -POLICY.max_age_ms - 1, position=0, surface="for_you")
    assert _decisions(_views(t_env, [first, *_view("old", completes=True, likes=True)])) == []


ACTIONS = st.sampled_from(["impression", "watch_full", "watch_short", "like", "unlike"])


@settings(max_examples=2, deadline=None)
@given(st.lists(st.lists(st.tuples(ACTIONS, st.integers(0, 2)), min_size=1, max_size=40), min_size=1, max_size=8))
def test_the_sql_decision_is_the_first_decision_of_the_python_rule(groups):
    """Random event sequences (each group: its own 3 videos; one Flink job runs all groups): the job's decision
    per video equals `decide` applied to the running totals in arrival order (brute force), first one wins."""
    payloads, totals, expected = [], {}, {}
    for g, actions in enumerate(groups):
        for i, (action, v) in enumerate(actions):
            video = f"g{g}v{v}"
            c = totals.setdefault(video, {"impressions": 0, "plays": 0, "completions": 0, "likes": 0})
            if action == "impression":
                payloads.append(_event("Impression", video, i, position=i, surface="for_you"))
                c["impressions"] += 1
            elif action.startswith("watch"):
                full = action == "watch_full"
                payloads.append(_event("Watch", video, i, watch_ms=10_000 if full else 100, video_duration_ms=10_000))
                c["plays"] += 1
                c["completions"] += full
            else:
                payloads.append(_event("Like", video, i, action=action.upper()))
                c["likes"] += 1 if action == "like" else -1
            decision = decide(Counters(first_seen_ms=0, event_time_ms=0, **c), POLICY)
            if decision and video not in expected:
                expected[video] = (decision, c["impressions"])
    got = {row[0]: (row[2], row[3]) for row in _decisions(_views(new_t_env(), payloads))}
    assert got == expected


@pytest.mark.parametrize("policy", [ExplorationPolicy(), POLICY])
def test_the_plan_keeps_one_decided_flag_per_video(t_env, policy):
    plan = _views(t_env, [b""], policy).sql_query("SELECT * FROM decisions").explain()
    assert "Deduplicate(keep=[FirstRow], key=[video_id]" in plan
    assert "OverAggregate(partitionBy=[video_id]" in plan
