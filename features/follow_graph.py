"""Where the follow graph lands for serving (jobs/follow_graph.py writes it; docs/REDIS_LAYOUT.md).

    fyp:following:v1:{user_id}    zset  followed author -> follow time (epoch ms)   no TTL
    fyp:followers:v1:{author_id}  hash  `followers`: how many users follow them     no TTL

Both are absolute values from the job's keyed state, so a replay writes the same. Neither key has a TTL: an
edge lives until its unfollow, however old the follow. A user's sorted set holds at most `FOLLOWING_MAX_SIZE`
authors, the most recently followed ones; edges beyond it stay in the job's state, in `graph.follows` and in the
author's follower count, but not in the user's sorted set (docs/REDIS_LAYOUT.md, "The follow graph").
"""

from __future__ import annotations

from udfs.limits import MAX_ID_BYTES, invalid_id_reason

__all__ = [
    "FOLLOWERS_FIELD",
    "FOLLOWERS_KEY_PREFIX",
    "FOLLOWING_KEY_PREFIX",
    "FOLLOWING_MAX_SIZE",
    "followers_key",
    "following_key",
]

FOLLOWING_KEY_PREFIX = "fyp:following:v1:"  # + user_id
FOLLOWERS_KEY_PREFIX = "fyp:followers:v1:"  # + author_id
FOLLOWERS_FIELD = "followers"  # the count's hash field (the sink adds `_et` and `_ut`)
# The app's follow limit: a user may follow at most this many accounts. The sorted set keeps the newest this many;
# candidate generation reads far fewer (RedisSources.max_authors).
FOLLOWING_MAX_SIZE = 10_000


def _checked(kind: str, value: str) -> str:
    """`value` if an event could carry it as an id, else ValueError: the job only ever writes such ids."""
    if not value:
        raise ValueError(f"{kind} id must not be empty")
    if len(value.encode()) > MAX_ID_BYTES:
        raise ValueError(f"{kind} id is {len(value.encode())} bytes, more than the {MAX_ID_BYTES} an event may carry")
    if reason := invalid_id_reason(value):
        raise ValueError(f"{kind} id {value!r} holds {'a :' if reason == 'separator' else 'a control character'}; "
                         "no event can carry it")
    return value


def following_key(user_id: str) -> str:
    """The sorted set of the authors `user_id` follows; ValueError for an id no event could carry.

    >>> following_key("u1")
    'fyp:following:v1:u1'
    """
    return FOLLOWING_KEY_PREFIX + _checked("user", user_id)


def followers_key(author_id: str) -> str:
    """The hash holding `author_id`'s follower count; ValueError for an id no event could carry.

    >>> followers_key("a1")
    'fyp:followers:v1:a1'
    """
    return FOLLOWERS_KEY_PREFIX + _checked("author", author_id)
