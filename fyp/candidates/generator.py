"""Candidate generation: every source for one user, filtered and merged under quotas.

    ann          nearest videos to the user's embedding (the index service's ScaNN index)
    cowatch      videos co-watched with the user's most recently seen ones (fyp:cowatch:v1:*)
    followed     the newest videos of the authors the user follows
    trending     the market's trending set (region x language), then the global one (fyp/candidates/market.py:
                 the request's region and language, else the market of the user's latest event, else global only)
    exploration  the newest approved videos (the fresh pool)

Then the user's recent-seen set and videos whose status is removed, rejected or failed are filtered out, and
`merge` fills k slots by quota (fyp/candidates/merge.py). Each source is asked for more than its quota (k plus
what the filters may take) so that the slots other sources leave empty can be refilled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fyp.candidates.market import Market, MarketSource, choose_market
from fyp.candidates.merge import DEFAULT_SHARES, Candidate, Merged, merge_with_stats, quota_counts
from fyp.candidates.sources import RedisSources

__all__ = ["CandidateGenerator", "Generated"]

AnnSearch = Callable[[int], list[Candidate]]  # k -> the user's nearest videos (raises LookupError: no embedding)


@dataclass(frozen=True, kw_only=True)
class Generated:
    merged: Merged
    quotas: dict[str, int]
    errors: dict[str, str]
    recent_seen: int
    hidden: int
    timings_ms: dict[str, float]
    market: Market | None = None
    market_source: MarketSource = "none"
    trending_split: tuple[int, int] = (0, 0)  # (from the market's set, from the global set)

    def as_json(self) -> dict[str, Any]:
        m = self.merged
        return {
            "results": [{"video_id": c.video_id, "score": c.score, "source": c.source} for c in m.candidates],
            "sources": {name: {"quota": self.quotas.get(name, 0), "offered": m.offered.get(name, 0),
                               "filtered": m.filtered.get(name, 0), "taken": m.taken.get(name, 0),
                               **({"error": self.errors[name]} if name in self.errors else {})}
                        for name in self.quotas},
            "filters": {"recent_seen": self.recent_seen, "hidden": self.hidden},
            "market": {"market": self.market.key if self.market else None, "from": self.market_source,
                       "market_videos": self.trending_split[0], "global_videos": self.trending_split[1]},
            "timings_ms": self.timings_ms,
        }


class CandidateGenerator:
    """shares: per-source shares of k (default `DEFAULT_SHARES`); max_fetch: the most asked of one source."""

    def __init__(self, sources: RedisSources, *, shares: Mapping[str, float] = DEFAULT_SHARES,
                 max_fetch: int = 1000) -> None:
        self.sources = sources
        self.shares = dict(shares)
        self.max_fetch = max_fetch

    def generate(self, user_id: str, k: int, ann: AnnSearch | None, *, market: Market | None = None) -> Generated:
        """market: the request's region x language (`fyp.candidates.market.request_market`), which wins over the
        user's own; None to use the user's."""
        timings: dict[str, float] = {}
        errors: dict[str, str] = {}
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = round((now - clock) * 1000, 3)
            clock = now

        seen, follows, stored_market = self.sources.user_context(user_id)
        market, market_source = choose_market(market, stored_market)
        lap("context")
        quotas = quota_counts(k, self.shares)
        fetch = min(k + len(seen), self.max_fetch)
        found: dict[str, list[Candidate]] = {}
        if ann is None:
            errors["ann"] = "no index"
        else:
            try:
                found["ann"] = ann(fetch)
            except LookupError as exc:
                errors["ann"] = str(exc.args[0] if exc.args else exc)
        lap("ann")
        found["cowatch"] = self.sources.cowatch(seen, fetch)
        found["followed"] = self.sources.followed(follows, fetch)
        trending = self.sources.trending(market, fetch)
        found["trending"] = trending.candidates
        found["exploration"] = self.sources.exploration(fetch)
        if market is None:
            errors["trending"] = "no market known for the user and none asked: global set only"
        elif not trending.market_videos:
            errors["trending"] = f"no trending set for market {market.key}: global set only"
        lap("sources")
        every = list(dict.fromkeys(c.video_id for cands in found.values() for c in cands))
        hidden = self.sources.hidden(every)
        lap("filter")
        for name in quotas:
            found.setdefault(name, [])
        merged = merge_with_stats(found, quotas, k=k, exclude=set(seen) | hidden)
        lap("merge")
        return Generated(merged=merged, quotas=quotas, errors=errors, recent_seen=len(seen), hidden=len(hidden),
                         timings_ms=timings, market=market, market_source=market_source,
                         trending_split=(trending.market_videos, trending.global_videos))
