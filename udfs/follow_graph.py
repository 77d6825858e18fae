"""The follow graph: which user follows which author, from FOLLOW / UNFOLLOW events, last writer wins.

An edge (user, author) is decided by its latest event by event time, whatever order Kafka delivers them in: an
UNFOLLOW at 10:00 that arrives before the FOLLOW of 09:00 leaves the user not following. At equal event times
UNFOLLOW wins (the safer reading of a tie: a user is not shown an author they may have dropped). Replaying an
event changes nothing, since it is not later than itself.

`apply` is the rule in Python, over a dict of edges; `current_edges_query` is the same rule as the Flink SQL the
job runs (jobs/follow_graph.py: one number per (user, author) in keyed state); tests check that they agree
(tests/flink/test_follow_graph.py). `following` and `follower_counts` are what the job writes to Redis from the
edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FOLLOW",
    "UNFOLLOW",
    "Action",
    "FollowEvent",
    "apply",
    "changelog_query",
    "current_edges_query",
    "follow_events_query",
    "follower_counts",
    "followers_query",
    "following",
    "following_query",
]

Action = Literal["FOLLOW", "UNFOLLOW"]
FOLLOW: Action = "FOLLOW"
UNFOLLOW: Action = "UNFOLLOW"

Edges = Mapping[tuple[str, str], "FollowEvent"]


@dataclass(frozen=True, kw_only=True)
class FollowEvent:
    """One follow or unfollow: `user_id` (un)followed `author_id` at `event_time_ms` (epoch ms)."""

    user_id: str
    author_id: str
    action: Action
    event_time_ms: int

    def __post_init__(self) -> None:
        if self.action not in (FOLLOW, UNFOLLOW):
            raise ValueError(f"action must be FOLLOW or UNFOLLOW, got {self.action!r}")
        if not self.user_id or not self.author_id:
            raise ValueError("user_id and author_id must not be empty")
        if self.event_time_ms < 0:
            raise ValueError(f"event_time_ms must be >= 0 (epoch ms), got {self.event_time_ms}")

    @property
    def order(self) -> tuple[int, bool]:
        """The last-writer-wins order: later event time first, then UNFOLLOW over FOLLOW at a tie."""
        return self.event_time_ms, self.action == UNFOLLOW


def apply(edges: Edges, event: FollowEvent) -> dict[tuple[str, str], FollowEvent]:
    """The edges after `event`: it replaces the pair's event unless that one is later (or the same).

    Unfollowed pairs keep their UNFOLLOW, so an older FOLLOW that arrives after it cannot bring the edge back.

    >>> e = apply({}, FollowEvent(user_id="u", author_id="a", action="UNFOLLOW", event_time_ms=2))
    >>> apply(e, FollowEvent(user_id="u", author_id="a", action="FOLLOW", event_time_ms=1))[("u", "a")].action
    'UNFOLLOW'
    """
    key = (event.user_id, event.author_id)
    current = edges.get(key)
    if current is not None and current.order >= event.order:
        return dict(edges)
    return {**edges, key: event}


def following(edges: Edges, user_id: str, *, cap: int) -> list[tuple[str, int]]:
    """(author, follow time) of the authors `user_id` follows, newest follow first, at most `cap` of them: what the
    user's sorted set holds (ties by author, as Redis orders equal scores).

    >>> f = FollowEvent(user_id="u", author_id="a", action="FOLLOW", event_time_ms=5)
    >>> following({("u", "a"): f}, "u", cap=10)
    [('a', 5)]
    """
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    followed = [(e.author_id, e.event_time_ms) for (u, _), e in edges.items() if u == user_id and e.action == FOLLOW]
    # Redis ranks equal scores by member bytes and ZREVRANGE reverses the whole order; trimming drops the lowest.
    followed.sort(key=lambda at: (at[1], at[0].encode()), reverse=True)
    return followed[:cap]


def follower_counts(edges: Edges) -> dict[str, int]:
    """Per author that ever had a follow event, how many users follow them now (0 after the last unfollow).

    >>> f = FollowEvent(user_id="u", author_id="a", action="FOLLOW", event_time_ms=5)
    >>> follower_counts({("u", "a"): f})
    {'a': 1}
    """
    counts: dict[str, int] = {}
    for (_, author), event in edges.items():
        counts[author] = counts.get(author, 0) + (event.action == FOLLOW)
    return counts


# --- the same rules as Flink SQL (jobs/follow_graph.py) ------------------------------------------------------


def follow_events_query(engagement_view: str) -> str:
    """The good follow events of a decoded engagement view (columns of udfs.envelope.ENGAGEMENT_COLUMNS plus
    kafka_partition, kafka_offset): user_id, author_id, action, event_time (epoch ms), event_id, Kafka coordinates.

    The decoder has already refused ids over their size limit or holding ':' or a control character; a follow
    without an author, with an action that is neither FOLLOW nor UNFOLLOW, or dated before 1970 (the edge order
    below needs a non-negative time) names no edge and is dropped."""
    return ("SELECT `user_id`, `author_id`, `action`, `event_time`, `event_id`, `kafka_partition`, `kafka_offset` "
            f"FROM `{engagement_view}` WHERE `event_type` = 'follow' AND `author_id` IS NOT NULL "
            f"AND `author_id` <> '' AND `action` IN ('{FOLLOW}', '{UNFOLLOW}') AND `event_time` >= 0")


def current_edges_query(events_view: str) -> str:
    """The latest event per (user_id, author_id) in `apply`'s order: an updating table keyed by the pair, with
    user_id, author_id, action, event_time. Flink keeps one BIGINT per pair in keyed state, forever: a pair's
    UNFOLLOW must outlive any FOLLOW that could still arrive, and a follow has no age limit.

    The order is one number, event_time * 2 + (1 for UNFOLLOW), and the pair's state is its MAX: a GROUP BY,
    whose retractions the follower count downstream needs. (A ROW_NUMBER top-1 over a BIGINT column, tried
    first, was planned as insert-only in Flink 2.2, and the count summed every version of an edge.)"""
    order = f"`event_time` * 2 + CASE WHEN `action` = '{UNFOLLOW}' THEN 1 ELSE 0 END"
    latest = f"SELECT `user_id`, `author_id`, MAX({order}) AS `k` FROM `{events_view}` GROUP BY `user_id`, `author_id`"
    return (f"SELECT `user_id`, `author_id`, CASE WHEN MOD(`k`, 2) = 1 THEN '{UNFOLLOW}' ELSE '{FOLLOW}' END "
            f"AS `action`, `k` / 2 AS `event_time` FROM ({latest})")


def following_query(edges_view: str) -> str:
    """Rows for the users' sorted sets: user_id, author_id, followed_at (epoch ms as DOUBLE, the score). An
    unfollowed pair has a NULL score, which the Redis sink applies as ZREM: no filter, so an edge that turns into
    an unfollow is an update of its row rather than a row that leaves the result."""
    return (f"SELECT `user_id`, `author_id`, CASE WHEN `action` = '{FOLLOW}' THEN CAST(`event_time` AS DOUBLE) END "
            f"AS `followed_at` FROM `{edges_view}`")


def followers_query(edges_view: str) -> str:
    """Per author: followers (the count of pairs whose latest event is a FOLLOW) and event_time (the latest
    event of any of their pairs, epoch ms). A pair's row only moves to a later event, so event_time never falls
    and the sink's stale-write rule never holds back a count."""
    follows = f"CASE WHEN `action` = '{FOLLOW}' THEN CAST(1 AS BIGINT) ELSE 0 END"
    return (f"SELECT `author_id`, SUM({follows}) AS `followers`, MAX(`event_time`) AS `event_time` "
            f"FROM `{edges_view}` GROUP BY `author_id`")


def changelog_query(events_view: str) -> str:
    """Rows for graph.follows_changelog: every follow event as it came, op '+' (FOLLOW) or '-' (UNFOLLOW)."""
    return (f"SELECT `user_id`, `author_id`, CASE WHEN `action` = '{FOLLOW}' THEN '+' ELSE '-' END AS `op`, "
            "TO_TIMESTAMP_LTZ(`event_time`, 3) AS `event_time`, `event_id`, `kafka_partition`, `kafka_offset` "
            f"FROM `{events_view}`")
