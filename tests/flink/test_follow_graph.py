"""The follow graph job's SQL on in-memory payloads: the same edges, sorted-set rows and follower counts as the
Python rule (udfs/follow_graph.py), whatever order the events arrive in."""

from __future__ import annotations

import random
import time
import uuid
from functools import reduce

from jobs.follow_graph import follow_graph_views
from schemas.registry import default_registry
from tests.flink.conftest import final_rows, new_t_env, raw_view
from udfs.follow_graph import FOLLOW, UNFOLLOW, FollowEvent, apply, follower_counts

NOW = int(time.time() * 1000)
DAY_MS = 86_400_000


def _follow(user: str, author: str, action: str, t: int, event_id: str | None = None) -> bytes:
    record = {"event_id": event_id or str(uuid.uuid4()), "event_time": t, "user_id": user, "video_id": f"v-{author}",
              "author_id": author, "sound_id": None, "region": "US", "language": "en", "session_id": "s1",
              "hashtags": [], "action": action}
    return default_registry().encode("Follow", record)


def _run(payloads: list[bytes]) -> tuple[dict, dict, dict]:
    """(edges, following rows, follower rows), each as its final row per key."""
    results = []
    for view, width in (("follow_edges", 2), ("following", 2), ("followers", 1)):
        t_env = new_t_env()
        raw_view(t_env, payloads)
        follow_graph_views(t_env, "raw")
        results.append(final_rows(t_env.sql_query(f"SELECT * FROM {view}").execute(), width))
    return results[0], results[1], results[2]


def test_edges_counts_and_sorted_set_rows():
    other = default_registry().encode("Like", {
        "event_id": "l1", "event_time": NOW, "user_id": "u1", "video_id": "v", "author_id": "a1", "sound_id": None,
        "region": "US", "language": "en", "session_id": "s", "hashtags": [], "action": "LIKE"})
    payloads = [
        _follow("u1", "a1", FOLLOW, NOW - 5 * DAY_MS),  # days old: still an edge
        _follow("u1", "a2", UNFOLLOW, NOW),  # the unfollow arrives first ...
        _follow("u1", "a2", FOLLOW, NOW - 1000),  # ... its older follow cannot revive the edge
        _follow("u2", "a1", FOLLOW, NOW, event_id="dup"),
        _follow("u2", "a1", FOLLOW, NOW, event_id="dup"),  # a duplicate
        _follow("u3", "a1", UNFOLLOW, NOW),  # an unfollow of a pair never followed
        _follow("u4", "", FOLLOW, NOW),  # no author: no edge
        other, b"\x00garbage",  # not a follow; not an event
    ]
    edges, following, followers = _run(payloads)
    assert {k: (v[2], v[3]) for k, v in edges.items()} == {
        ("u1", "a1"): (FOLLOW, NOW - 5 * DAY_MS), ("u1", "a2"): (UNFOLLOW, NOW), ("u2", "a1"): (FOLLOW, NOW),
        ("u3", "a1"): (UNFOLLOW, NOW)}
    # An unfollowed pair's row has no score: the Redis sink removes the member.
    assert following == {("u1", "a1"): ("u1", "a1", float(NOW - 5 * DAY_MS)), ("u1", "a2"): ("u1", "a2", None),
                         ("u2", "a1"): ("u2", "a1", float(NOW)), ("u3", "a1"): ("u3", "a1", None)}
    assert followers == {("a1",): ("a1", 2, NOW), ("a2",): ("a2", 0, NOW)}


def test_any_arrival_order_gives_the_python_rules_result():
    """Random follow / unfollow sequences over a few pairs, each group shuffled differently (one job runs all
    groups): the job's final edges and counts equal `apply` and `follower_counts` over the same events."""
    rng = random.Random(18)
    payloads, events = [], []
    for group in range(4):
        group_events = [FollowEvent(user_id=f"g{group}u{rng.randrange(2)}", author_id=f"a{rng.randrange(3)}",
                                    action=rng.choice([FOLLOW, UNFOLLOW]), event_time_ms=NOW + rng.randrange(6))
                        for _ in range(25)]
        rng.shuffle(group_events)
        events += group_events
        payloads += [_follow(e.user_id, e.author_id, e.action, e.event_time_ms) for e in group_events]
    expected = reduce(apply, events, {})
    edges, _, followers = _run(payloads)
    assert {k: (v[2], v[3]) for k, v in edges.items()} == {k: (e.action, e.event_time_ms) for k, e in expected.items()}
    assert {k[0]: v[1] for k, v in followers.items()} == follower_counts(expected)


def test_the_plan_keeps_one_number_per_pair():
    t_env = new_t_env()
    raw_view(t_env, [b""])
    follow_graph_views(t_env, "raw")
    plan = t_env.sql_query("SELECT * FROM follow_edges").explain()
    assert "GroupAggregate(groupBy=[user_id, author_id], select=[user_id, author_id, MAX(" in plan, plan
