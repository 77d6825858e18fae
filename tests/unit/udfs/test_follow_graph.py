"""The follow graph's rule without Flink: last writer wins per (user, author), duplicates, unfollows, the cap, the
follower counts, and the Redis keys' checks."""

from __future__ import annotations

import doctest
import importlib
import itertools
from functools import reduce

import pytest

from features.follow_graph import followers_key, following_key
from udfs.follow_graph import FOLLOW, UNFOLLOW, FollowEvent, apply, follower_counts, following


def ev(action: str, t: int, user: str = "u", author: str = "a") -> FollowEvent:
    return FollowEvent(user_id=user, author_id=author, action=action, event_time_ms=t)  # type: ignore[arg-type]


def replay(*events: FollowEvent) -> dict:
    return reduce(apply, events, {})


@pytest.mark.parametrize(("events", "follows"), [
    ((ev(FOLLOW, 1),), True),
    ((ev(FOLLOW, 1), ev(UNFOLLOW, 2)), False),
    ((ev(UNFOLLOW, 2), ev(FOLLOW, 1)), False),  # the older follow arrives late: the unfollow stays
    ((ev(FOLLOW, 3), ev(UNFOLLOW, 2)), True),  # the older unfollow arrives late: the follow stays
    ((ev(FOLLOW, 1), ev(UNFOLLOW, 2), ev(FOLLOW, 3)), True),  # follow again
    ((ev(FOLLOW, 2), ev(UNFOLLOW, 2)), False),  # a tie: unfollow wins ...
    ((ev(UNFOLLOW, 2), ev(FOLLOW, 2)), False),  # ... whichever arrives first
    ((ev(UNFOLLOW, 1),), False),  # an unfollow of a pair never followed
])
def test_last_writer_by_event_time_wins(events, follows):
    assert (follower_counts(replay(*events))["a"] == 1) is follows
    assert (following(replay(*events), "u", cap=10) != []) is follows


def test_every_arrival_order_gives_the_same_edges():
    events = [ev(FOLLOW, 1), ev(UNFOLLOW, 5), ev(FOLLOW, 9, author="b"), ev(UNFOLLOW, 3, author="b"),
              ev(FOLLOW, 4, user="w"), ev(FOLLOW, 4, user="w")]
    results = {tuple(sorted(replay(*order).items())) for order in itertools.permutations(events)}
    assert len(results) == 1
    edges = replay(*events)
    assert following(edges, "u", cap=10) == [("b", 9)]
    assert follower_counts(edges) == {"a": 1, "b": 1}  # a: w follows; u unfollowed at 5


def test_a_duplicate_changes_nothing():
    once = replay(ev(FOLLOW, 7), ev(FOLLOW, 8, author="b"))
    assert apply(once, ev(FOLLOW, 7)) == once
    assert apply(once, ev(FOLLOW, 8, author="b")) == once
    assert apply(once, ev(FOLLOW, 8, author="b")) is not once  # pure: a new dict, the input untouched


def test_the_cap_keeps_the_newest_follows_in_redis_order():
    edges = replay(*(ev(FOLLOW, t, author=f"a{t}") for t in range(5)), ev(FOLLOW, 4, author="z"),
                   ev(UNFOLLOW, 9, author="a3"))
    assert following(edges, "u", cap=3) == [("z", 4), ("a4", 4), ("a2", 2)]  # equal scores: greater member first
    assert follower_counts(edges)["a0"] == 1  # beyond the cap: still an edge, still counted
    with pytest.raises(ValueError, match="cap"):
        following(edges, "u", cap=0)


def test_follower_counts_count_users_and_keep_zeros():
    edges = replay(ev(FOLLOW, 1, user="u1"), ev(FOLLOW, 1, user="u2"), ev(FOLLOW, 1, user="u3"),
                   ev(UNFOLLOW, 2, user="u2"), ev(FOLLOW, 1, author="b"), ev(UNFOLLOW, 2, author="b"))
    assert follower_counts(edges) == {"a": 2, "b": 0}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"action": "LIKE"}, "FOLLOW or UNFOLLOW"),
    ({"user_id": ""}, "must not be empty"),
    ({"author_id": ""}, "must not be empty"),
    ({"event_time_ms": -1}, ">= 0"),
])
def test_a_bad_event_is_refused(kwargs, message):
    fields = {"user_id": "u", "author_id": "a", "action": FOLLOW, "event_time_ms": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        FollowEvent(**fields)


@pytest.mark.parametrize(("make", "value", "message"), [
    (following_key, "a:b", "holds a :"),
    (followers_key, "a\nb", "control character"),
    (following_key, "", "must not be empty"),
    (followers_key, "x" * 129, "more than the 128"),
])
def test_keys_refuse_ids_no_event_could_carry(make, value, message):
    with pytest.raises(ValueError, match=message):
        make(value)


@pytest.mark.parametrize("module", ["udfs.follow_graph", "features.follow_graph"])
def test_docstring_examples_run(module):
    assert doctest.testmod(importlib.import_module(module), raise_on_error=True).failed == 0
