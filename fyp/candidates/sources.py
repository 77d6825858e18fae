"""Candidate sources read from Redis, and the filters: one round trip per step (`fyp.serving.roundtrip.read`: packed
by hand and parsed by hiredis, on a single Redis or a Redis Cluster; redis-py's pipeline packed, parsed and
health-checked each step in Python, a measurable share of every feed, docs/FEED.md "Fewer GIL hand-overs").

Layout (docs/INDEX.md, "Candidate generation"; docs/REDIS_LAYOUT.md):

    fyp:cowatch:v1:{video_id}         zset  co-watched video -> strength        fyp worker candidate-sets (history)
    fyp:following:v1:{user_id}        zset  followed author -> follow time       jobs/follow_graph.py
    fyp:author_videos:v1:{author_id}  zset  video -> approval time               jobs/video_embeddings.py
    fyp:fresh_videos:v1               zset  video -> approval time (48 h)        jobs/video_embeddings.py
    fyp:exploration:v1:{decision}     zset  video -> decision time (PROMOTE, DEMOTE)  jobs/exploration.py
    recent-seen, trending, global trending, user market
                                      the features job's serving sets (features/serving_sets.py)
    fyp:video:v1:{video_id}           hash  its `status` filters removed, rejected and failed videos
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from connectors.redis_video_store import AUTHOR_VIDEOS_KEY, FRESH_VIDEOS_KEY, video_key
from features.exploration import decisions_key
from features.follow_graph import following_key
from features.serving_sets import GLOBAL_TRENDING_KEY, RECENT_SEEN, TRENDING, USER_MARKET
from fyp.candidates.market import Market, Trending, cold_start_trending
from fyp.candidates.merge import Candidate
from fyp.serving.roundtrip import read
from udfs.exploration import DEMOTE, PROMOTE

__all__ = [
    "COWATCH_KEY",
    "HIDDEN_STATUSES",
    "RedisSources",
    "combine_cowatch",
    "exploration_pool",
]

COWATCH_KEY = "fyp:cowatch:v1:{video_id}"
HIDDEN_STATUSES = frozenset({"removed", "rejected", "failed"})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> list[tuple[Any, float]]:
    """A ZREVRANGE ... WITHSCORES reply as `fyp.serving.roundtrip.read` gives it (member, score, member, score, ...)
    as (member, score) pairs, as redis-py's `withscores=True` gives them."""
    return [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]


def combine_cowatch(lists: Iterable[Sequence[tuple[Any, float]]], *, limit: int) -> list[Candidate]:
    """Sum each video's strength over the seeds' co-watch lists; best first, ties by id.

    >>> [c.video_id for c in combine_cowatch([[("b", 0.5), ("c", 0.2)], [("c", 0.4)]], limit=5)]
    ['c', 'b']
    """
    total: dict[str, float] = {}
    for pairs in lists:
        for member, score in pairs:
            video_id = _text(member)
            total[video_id] = total.get(video_id, 0.0) + float(score)
    best = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [Candidate(v, "cowatch", round(s, 6)) for v, s in best]


def exploration_pool(
    fresh: Sequence[tuple[Any, float]], *, promoted: Mapping[str, float], demoted: Collection[str], limit: int
) -> list[Candidate]:
    """The exploration pool after the exploration job's decisions: demoted videos leave it, promoted ones come
    first (most recently promoted first), then the undecided ones newest first.

    fresh: (video, approval time) pairs of the fresh pool, newest first; promoted: video -> promotion time, for
    videos still in the fresh pool; demoted: demoted videos. Scores stay the source's own (approval time for
    the undecided, promotion time for the promoted), so the merge's per-source order is the one returned here.

    >>> [c.video_id for c in exploration_pool([("a", 3.0), ("b", 2.0), ("c", 1.0)], promoted={"c": 9.0},
    ...                                        demoted={"b"}, limit=5)]
    ['c', 'a']
    """
    if limit <= 0:
        return []
    first = sorted(((v, s) for v, s in promoted.items() if v not in demoted), key=lambda vs: (-vs[1], vs[0]))
    rest = [(v, float(s)) for v, s in ((_text(m), s) for m, s in fresh) if v not in promoted and v not in demoted]
    return [Candidate(v, "exploration", float(s)) for v, s in (first + rest)[:limit]]


class RedisSources:
    """The non-ANN sources and the filters over one `redis.Redis` client."""

    def __init__(self, client: Any, *, seeds: int = 20, per_author: int = 5, max_authors: int = 50,
                 max_pages: int = 4) -> None:
        self.redis = client
        self.seeds = seeds
        self.per_author = per_author
        self.max_authors = max_authors
        self.max_pages = max_pages

    def user_context(self, user_id: str) -> tuple[list[str], set[str], str | None]:
        """(recent-seen newest first, followed authors, market "REGION:language" of the latest event or None).

        Followed authors: the `max_authors` most recently followed (the follow graph job's sorted set). A user id
        no event could carry (`following_key` refuses it) follows nobody; its other sources still answer."""
        try:
            following = following_key(user_id)
        except ValueError:
            following = None
        commands = [("ZREVRANGE", RECENT_SEEN.key_prefix + user_id, 0, -1),
                    ("ZREVRANGE", USER_MARKET.key_prefix + user_id, 0, 0)]  # one member: the latest event's market
        if following is not None:
            commands.append(("ZREVRANGE", following, 0, self.max_authors - 1))
        seen, market, *follows = read(self.redis, (), commands)
        followed = {_text(a) for a in follows[0]} if follows else set()
        return [_text(v) for v in seen], followed, _text(market[0]) if market else None

    def cowatch(self, seeds: Sequence[str], limit: int) -> list[Candidate]:
        """Videos co-watched with the user's most recent `self.seeds` seen videos."""
        if not seeds or limit <= 0:
            return []
        replies = read(self.redis, (), [("ZREVRANGE", COWATCH_KEY.format(video_id=video_id), 0, limit - 1,
                                         "WITHSCORES") for video_id in seeds[: self.seeds]])
        return combine_cowatch(map(_pairs, replies), limit=limit)

    def followed(self, authors: Iterable[str], limit: int) -> list[Candidate]:
        """Each followed author's newest videos, newest first over all authors."""
        authors = sorted(authors)[: self.max_authors]
        if not authors or limit <= 0:
            return []
        replies = read(self.redis, (), [("ZREVRANGE", AUTHOR_VIDEOS_KEY.format(author_id=author), 0,
                                         self.per_author - 1, "WITHSCORES") for author in authors])
        found = [(_text(v), s) for flat in replies for v, s in _pairs(flat)]
        found.sort(key=lambda vs: (-vs[1], vs[0]))
        return [Candidate(v, "followed", float(s)) for v, s in found[:limit]]

    def trending(self, market: Market | None, limit: int) -> Trending:
        """The market's trending set (features/serving_sets.py TRENDING), then the global one (GLOBAL_TRENDING)
        for what it leaves of `limit`: one round trip (`fyp.candidates.market.cold_start_trending`)."""
        if limit <= 0:
            return cold_start_trending([], [], limit=0)
        commands = [("ZREVRANGE", GLOBAL_TRENDING_KEY, 0, limit - 1, "WITHSCORES")]
        if market is not None:
            commands.insert(0, ("ZREVRANGE", TRENDING.key_prefix + market.key, 0, limit - 1, "WITHSCORES"))
        replies = [_pairs(flat) for flat in read(self.redis, (), commands)]
        return cold_start_trending(replies[0] if market is not None else [], replies[-1], limit=limit)

    def exploration(self, limit: int) -> list[Candidate]:
        """The fresh pool (the newest approved videos, kept by the embedding job) after the exploration job's
        decisions: demoted videos left out, promoted ones first (`exploration_pool`).

        Reads the pool newest first in pages until `limit` undemoted videos are found (at most `max_pages`
        pages of 2 * limit): a burst of demotions among the newest videos costs another round trip, not a
        short answer. Promoted videos count only while they are still in the pool (48 h, not taken down).
        """
        if limit <= 0:
            return []
        page = 2 * limit
        promoted_pairs, rows = map(_pairs, read(self.redis, (), [
            ("ZREVRANGE", decisions_key(PROMOTE), 0, limit - 1, "WITHSCORES"),
            ("ZREVRANGE", FRESH_VIDEOS_KEY, 0, page - 1, "WITHSCORES")]))
        promoted = {_text(v): float(s) for v, s in promoted_pairs}
        fresh: list[tuple[str, float]] = []
        demoted: set[str] = set()
        for number in range(self.max_pages):
            batch = [(_text(v), float(s)) for v, s in rows]
            commands = [("ZMSCORE", decisions_key(DEMOTE), *([v for v, _ in batch] or ["-"]))]  # needs a member
            if number == 0:
                commands.append(("ZMSCORE", FRESH_VIDEOS_KEY, *(list(promoted) or ["-"])))
            replies = read(self.redis, (), commands)
            demoted.update(v for (v, _), score in zip(batch, replies[0], strict=False) if score is not None)
            if number == 0:  # promoted videos count while the pool still holds them (48 h, not taken down)
                promoted = {v: s for (v, s), score in zip(promoted.items(), replies[1], strict=False)
                            if score is not None}
            fresh.extend(batch)
            if len(batch) < page or len(fresh) - len(demoted) >= limit:
                break
            rows = _pairs(read(self.redis, (), [("ZREVRANGE", FRESH_VIDEOS_KEY, len(fresh), len(fresh) + page - 1,
                                                  "WITHSCORES")])[0])
        return exploration_pool(fresh, promoted=promoted, demoted=demoted, limit=limit)

    def hidden(self, video_ids: Sequence[str]) -> set[str]:
        """The videos whose Redis hash says removed, rejected or failed (videos without a hash pass)."""
        if not video_ids:
            return set()
        # Up to ~2,000 HGETs: one hand-packed round trip parsed by hiredis (fyp.serving.roundtrip), not a redis-py
        # pipeline, which packs and parses each command in Python (a third of the generator's CPU, cProfile).
        replies = read(self.redis, (), [("HGET", video_key(v), "status") for v in video_ids])
        return {v for v, s in zip(video_ids, replies, strict=True) if s and _text(s) in HIDDEN_STATUSES}
