"""Merging candidate sources under quotas: pure functions over plain lists, no Redis and no index.

Each source gives its candidates best first. `quota_counts` turns per-source shares of k into whole slots
(largest remainder, so they add up to k exactly). `merge` takes each source's slots in turn, rank by rank (so
the list interleaves sources instead of stacking them), skips what is excluded (recent-seen, removed) or
already taken by a source before it, then gives slots a source could not fill to the others in order.

>>> got = merge({"ann": [Candidate("a", "ann", 0.9), Candidate("b", "ann", 0.8)],
...              "trending": [Candidate("b", "trending", 5.0), Candidate("c", "trending", 4.0)]},
...             {"ann": 1, "trending": 1}, k=3, exclude={"c"})
>>> [(c.video_id, c.source) for c in got]
[('a', 'ann'), ('b', 'trending')]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["DEFAULT_SHARES", "SOURCES", "Candidate", "Merged", "merge", "merge_with_stats", "quota_counts"]

# Sources in priority order: a video found by two sources is credited to the first.
SOURCES = ("ann", "cowatch", "followed", "trending", "exploration")
# Shares of k per source. ANN carries the personal signal; exploration keeps new videos in front of people.
DEFAULT_SHARES: Mapping[str, float] = {"ann": 0.4, "cowatch": 0.2, "followed": 0.15, "trending": 0.15,
                                       "exploration": 0.1}


class Candidate(NamedTuple):
    """One video from one source; `score` is the source's own (cosine, co-watch strength, recency, ...)."""

    video_id: str
    source: str
    score: float


@dataclass(frozen=True, kw_only=True)
class Merged:
    """The merged list and, per source, how many it offered, how many survived the filters, how many it got."""

    candidates: list[Candidate]
    offered: dict[str, int]
    filtered: dict[str, int]
    taken: dict[str, int]


def quota_counts(k: int, shares: Mapping[str, float]) -> dict[str, int]:
    """Whole slots per source adding up to k (largest remainder); shares need not sum to 1.

    >>> quota_counts(10, {"ann": 0.4, "cowatch": 0.2, "followed": 0.15, "trending": 0.15, "exploration": 0.1})
    {'ann': 4, 'cowatch': 2, 'followed': 2, 'trending': 1, 'exploration': 1}
    >>> quota_counts(3, {"a": 1, "b": 0})
    {'a': 3, 'b': 0}
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if any(s < 0 for s in shares.values()):
        raise ValueError(f"shares must be >= 0, got {dict(shares)}")
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("at least one share must be positive")
    exact = {name: k * s / total for name, s in shares.items()}
    counts = {name: int(x) for name, x in exact.items()}
    left = k - sum(counts.values())
    # Ties go to the source listed first (dict order), so the result is deterministic.
    order = sorted(exact, key=lambda n: (-(exact[n] - counts[n]), list(shares).index(n)))
    for name in order[:left]:
        counts[name] += 1
    return counts


def merge(sources: Mapping[str, Sequence[Candidate]], quotas: Mapping[str, int], *, k: int,
          exclude: Collection[str] = ()) -> list[Candidate]:
    """Up to k distinct candidates; see the module docstring. Sources absent from `quotas` get no slots."""
    return merge_with_stats(sources, quotas, k=k, exclude=exclude).candidates


def merge_with_stats(sources: Mapping[str, Sequence[Candidate]], quotas: Mapping[str, int], *, k: int,
                     exclude: Collection[str] = ()) -> Merged:
    """`merge`, plus counts per source for /v1/candidates' `sources` block."""
    excluded = set(exclude)
    names = [n for n in quotas if n in sources]
    pools: dict[str, list[Candidate]] = {}
    for name in names:
        seen: set[str] = set()
        pools[name] = [c for c in sources[name] if c.video_id not in excluded
                       and not (c.video_id in seen or seen.add(c.video_id))]
    taken_ids: set[str] = set()
    out: list[Candidate] = []
    taken = dict.fromkeys(names, 0)
    cursor = dict.fromkeys(names, 0)

    def take(name: str, limit: int) -> bool:
        """Take the source's next untaken candidate if it is under `limit`; False when it cannot."""
        pool = pools[name]
        while taken[name] < limit and cursor[name] < len(pool):
            candidate = pool[cursor[name]]
            cursor[name] += 1
            if candidate.video_id not in taken_ids:
                taken_ids.add(candidate.video_id)
                out.append(candidate)
                taken[name] += 1
                return True
        return False

    # Round robin within quotas, then round robin again without them for the slots left. Within a pass a source
    # that cannot give (its limit reached, its pool used up) never can again, so it leaves the rotation: with one
    # source left, the rotation no longer asks the other four for each slot (the merge was the generator's
    # largest Python cost, cProfile).
    for limits in ({n: quotas[n] for n in names}, dict.fromkeys(names, k)):
        active = list(names)
        while len(out) < k and active:
            for name in list(active):
                if len(out) >= k:
                    break
                if not take(name, limits[name]):
                    active.remove(name)
    return Merged(candidates=out, offered={n: len(sources[n]) for n in names},
                  filtered={n: len(sources[n]) - len(pools[n]) for n in names}, taken=taken)
