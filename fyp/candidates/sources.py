"""Candidate sources read from Redis, and the filters: one pipelined round trip per step.

Layout (docs/INDEX.md, "Candidate generation"; docs/REDIS_LAYOUT.md):

    fyp:cowatch:v1:{video_id}         zset  co-watched video -> strength        fyp worker candidate-sets (history)
    fyp:follows:v1:{user_id}          set   followed author ids                  fyp worker candidate-sets (history)
    fyp:user_market:v1:{user_id}      str   "REGION:language" of the user's last event     (same)
    fyp:author_videos:v1:{author_id}  zset  video -> approval time               jobs/video_embeddings.py
    fyp:fresh_videos:v1               zset  video -> approval time (48 h)        jobs/video_embeddings.py
    recent-seen, trending              the features job's serving sets (features/serving_sets.py)
    fyp:video:v1:{video_id}           hash  its `status` filters removed, rejected and failed videos
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from connectors.redis_video_store import AUTHOR_VIDEOS_KEY, FRESH_VIDEOS_KEY, video_key
from features.serving_sets import RECENT_SEEN, TRENDING
from fyp.candidates.merge import Candidate

__all__ = [
    "COWATCH_KEY",
    "FOLLOWS_KEY",
    "HIDDEN_STATUSES",
    "USER_MARKET_KEY",
    "RedisSources",
    "combine_cowatch",
]

COWATCH_KEY = "fyp:cowatch:v1:{video_id}"
FOLLOWS_KEY = "fyp:follows:v1:{user_id}"
USER_MARKET_KEY = "fyp:user_market:v1:{user_id}"
HIDDEN_STATUSES = frozenset({"removed", "rejected", "failed"})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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


class RedisSources:
    """The non-ANN sources and the filters over one `redis.Redis` client."""

    def __init__(self, client: Any, *, seeds: int = 20, per_author: int = 5, max_authors: int = 50) -> None:
        self.redis = client
        self.seeds = seeds
        self.per_author = per_author
        self.max_authors = max_authors

    def user_context(self, user_id: str) -> tuple[list[str], set[str], str | None]:
        """(recent-seen newest first, followed authors, market "REGION:language" or None)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrevrange(RECENT_SEEN.key_prefix + user_id, 0, -1)
        pipe.smembers(FOLLOWS_KEY.format(user_id=user_id))
        pipe.get(USER_MARKET_KEY.format(user_id=user_id))
        seen, follows, market = pipe.execute()
        return [_text(v) for v in seen], {_text(a) for a in follows}, _text(market) if market else None

    def cowatch(self, seeds: Sequence[str], limit: int) -> list[Candidate]:
        """Videos co-watched with the user's most recent `self.seeds` seen videos."""
        if not seeds or limit <= 0:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for video_id in seeds[: self.seeds]:
            pipe.zrevrange(COWATCH_KEY.format(video_id=video_id), 0, limit - 1, withscores=True)
        return combine_cowatch(pipe.execute(), limit=limit)

    def followed(self, authors: Iterable[str], limit: int) -> list[Candidate]:
        """Each followed author's newest videos, newest first over all authors."""
        authors = sorted(authors)[: self.max_authors]
        if not authors or limit <= 0:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for author in authors:
            pipe.zrevrange(AUTHOR_VIDEOS_KEY.format(author_id=author), 0, self.per_author - 1, withscores=True)
        found = [(_text(v), s) for pairs in pipe.execute() for v, s in pairs]
        found.sort(key=lambda vs: (-vs[1], vs[0]))
        return [Candidate(v, "followed", float(s)) for v, s in found[:limit]]

    def trending(self, market: str | None, limit: int) -> list[Candidate]:
        """The user's market's trending set (features/serving_sets.py TRENDING), best first."""
        if not market or limit <= 0:
            return []
        pairs = self.redis.zrevrange(TRENDING.key_prefix + market, 0, limit - 1, withscores=True)
        return [Candidate(_text(v), "trending", round(float(s), 6)) for v, s in pairs]

    def exploration(self, limit: int) -> list[Candidate]:
        """The newest approved videos (the fresh pool the embedding job keeps)."""
        if limit <= 0:
            return []
        pairs = self.redis.zrevrange(FRESH_VIDEOS_KEY, 0, limit - 1, withscores=True)
        return [Candidate(_text(v), "exploration", float(s)) for v, s in pairs]

    def hidden(self, video_ids: Sequence[str]) -> set[str]:
        """The videos whose Redis hash says removed, rejected or failed (videos without a hash pass)."""
        if not video_ids:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for video_id in video_ids:
            pipe.hget(video_key(video_id), "status")
        return {v for v, s in zip(video_ids, pipe.execute(), strict=True) if s and _text(s) in HIDDEN_STATUSES}
