"""What the exploration job counts per new video: the engagement declarations' own impressions, plays,
completions and net likes, so a "completion" means the same to exploration as to the Redis features."""

from __future__ import annotations

from features.engagement.common import COMPLETIONS, IMPRESSIONS, LIKES, PLAYS
from udfs.featurespec import Aggregation

__all__ = ["EXPLORATION_COUNTERS"]

EXPLORATION_COUNTERS: dict[str, Aggregation] = {
    "impressions": IMPRESSIONS,
    "plays": PLAYS,
    "completions": COMPLETIONS,
    "likes": LIKES,
}
