"""A user's market (region x language) and the cold-start trending list: pure functions, no Redis.

Which market's trending set a request reads (`choose_market`):

1. the request's `region` and `language`, when it gives them (what the client knows now, e.g. a new device);
2. else the user's market: the region:language of their latest event (features/serving_sets.py USER_MARKET,
   written by the features job from the first event on);
3. else none: the global set alone.

The trending list (`cold_start_trending`) is the market's set, best first, then the global set's videos that the
market's set does not hold, best first, up to `limit`. Each set keeps its top 200 (TRENDING.max_size,
GLOBAL_TRENDING.max_size), so a request sees up to 200 market videos, then global ones.

Region and language are checked as the events' are (udfs/limits.py): at most 16 and 35 UTF-8 bytes, no ':' and
no control character, since they become Redis key parts. Beyond that any value is accepted: a market nobody has
watched in yet simply has no set, and the global one serves (`Trending.market_videos` says 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fyp.candidates.merge import Candidate
from udfs.limits import KEY_SEPARATOR, TEXT_LIMITS, invalid_id_reason

__all__ = ["Market", "MarketSource", "Trending", "choose_market", "cold_start_trending", "request_market"]

MarketSource = Literal["request", "user", "none"]


@dataclass(frozen=True, kw_only=True)
class Market:
    """A region x language pair, the key of a trending set ("US:en").

    >>> Market.parse("US:en")
    Market(region='US', language='en')
    >>> Market(region="US", language="en").key
    'US:en'
    """

    region: str
    language: str

    def __post_init__(self) -> None:
        for field, value in (("region", self.region), ("language", self.language)):
            problem = _field_problem(field, value)
            if problem:
                raise ValueError(problem)

    @property
    def key(self) -> str:
        return f"{self.region}{KEY_SEPARATOR}{self.language}"

    @classmethod
    def parse(cls, text: str) -> Market:
        """A stored "REGION:language" (the features job's member); ValueError for anything else."""
        region, separator, language = text.partition(KEY_SEPARATOR)
        if not separator:
            raise ValueError(f"market {text!r} is not REGION:language")
        return cls(region=region, language=language)


def _field_problem(field: str, value: str) -> str | None:
    """Why `value` cannot be a market's region or language, or None. The limits are the events' own."""
    limit = TEXT_LIMITS[field]
    if not value:
        return f"{field} must not be empty"
    if len(value.encode()) > limit:
        return f"{field} is {len(value.encode())} bytes, more than the {limit} an event may carry"
    reason = invalid_id_reason(value)
    if reason == "separator":
        return f"{field} {value!r} holds {KEY_SEPARATOR!r}, which separates a market's parts"
    if reason == "control":
        return f"{field} {value!r} holds a control character"
    return None


def request_market(region: str | None, language: str | None) -> Market | None:
    """The market a request names, or None when it names none; ValueError when it gives one half only, or a value
    no event could carry.

    >>> request_market("FR", "fr")
    Market(region='FR', language='fr')
    >>> request_market(None, None) is None
    True
    >>> request_market("FR", None)
    Traceback (most recent call last):
    ...
    ValueError: region and language go together: give both or neither (got region only)
    """
    if region is None and language is None:
        return None
    if region is None or language is None:
        given = "region" if region is not None else "language"
        raise ValueError(f"region and language go together: give both or neither (got {given} only)")
    return Market(region=region, language=language)


def choose_market(requested: Market | None, stored: str | None) -> tuple[Market | None, MarketSource]:
    """The market whose trending set serves, and where it came from (see the module docstring).

    A stored value that is not a valid market (written by hand, or by an older writer) is ignored rather than
    used as a key.

    >>> choose_market(None, "DE:de")
    (Market(region='DE', language='de'), 'user')
    >>> choose_market(Market(region="FR", language="fr"), "DE:de")
    (Market(region='FR', language='fr'), 'request')
    >>> choose_market(None, "garbage")
    (None, 'none')
    """
    if requested is not None:
        return requested, "request"
    if stored:
        try:
            return Market.parse(stored), "user"
        except ValueError:
            pass
    return None, "none"


@dataclass(frozen=True, kw_only=True)
class Trending:
    """The trending source's list, and how many of its videos came from the market's set and the global one."""

    candidates: list[Candidate]
    market_videos: int
    global_videos: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def cold_start_trending(market_pairs: Sequence[tuple[Any, float]], global_pairs: Sequence[tuple[Any, float]], *,
                        limit: int) -> Trending:
    """The market's (video, score) pairs, then the global set's that are not among them, up to `limit`.

    Both lists are best first (ZREVRANGE ... WITHSCORES). Scores stay each set's own; the merge goes by rank.

    >>> t = cold_start_trending([("a", 9.0), ("b", 8.0)], [("b", 20.0), ("c", 15.0), ("d", 1.0)], limit=3)
    >>> [c.video_id for c in t.candidates], t.market_videos, t.global_videos
    (['a', 'b', 'c'], 2, 1)
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    first = [Candidate(_text(v), "trending", round(float(s), 6)) for v, s in market_pairs][:limit]
    taken = {c.video_id for c in first}
    rest = [Candidate(v, "trending", round(float(s), 6)) for v, s in ((_text(m), s) for m, s in global_pairs)
            if v not in taken][: limit - len(first)]
    return Trending(candidates=first + rest, market_videos=len(first), global_videos=len(rest))
