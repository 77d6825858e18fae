"""What the exploration job counts per new video: the engagement declarations' own impressions, plays,
completions and net likes, so a "completion" means the same to exploration as to the Redis features.

And where its decisions land for serving: one sorted set per decision, `fyp:exploration:v1:PROMOTE` and
`fyp:exploration:v1:DEMOTE`, member video_id, score the decision's event time (epoch ms). The job decides each
video at most once, so a video is in one of the two sets at most (docs/REDIS_LAYOUT.md); candidate generation
drops demoted videos from the exploration pool and puts promoted ones first (fyp/candidates/sources.py).
"""

from __future__ import annotations

from datetime import timedelta

from features.engagement.common import COMPLETIONS, IMPRESSIONS, LIKES, PLAYS
from featurespec import Aggregation

__all__ = ["DECISIONS_KEY_PREFIX", "DECISIONS_MAX_SIZE", "DECISIONS_TTL", "EXPLORATION_COUNTERS", "decisions_key"]

EXPLORATION_COUNTERS: dict[str, Aggregation] = {
    "impressions": IMPRESSIONS,
    "plays": PLAYS,
    "completions": COMPLETIONS,
    "likes": LIKES,
}

DECISIONS_KEY_PREFIX = "fyp:exploration:v1:"  # + the decision (PROMOTE / DEMOTE)
# The newest decisions kept per set: far more than the fresh pool (48 h of approvals) holds at this scale.
DECISIONS_MAX_SIZE = 100_000
# Refreshed by every write; longer than the fresh pool's 48 h, so a quiet day does not forget a demotion.
DECISIONS_TTL = timedelta(days=3)


def decisions_key(decision: str) -> str:
    """The sorted set of one decision's videos.

    >>> decisions_key("DEMOTE")
    'fyp:exploration:v1:DEMOTE'
    """
    return DECISIONS_KEY_PREFIX + decision
