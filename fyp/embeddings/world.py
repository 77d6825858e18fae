"""A generated world's training positives: seeded traffic (fyp.traffic) -> engagement rows (the features job's
decoder) -> training rows (fyp.training's point-in-time backfill, the code `fyp training-set build` runs) ->
`Positives`, the two towers' training data.

The declaration is training/watch_outcomes.py's with only what the towers read (the positive labels, the
user's features and recent positives): the other feature sets would only make the backfill longer. The oracle
of the same `TrafficConfig` and seed (fyp.embeddings.oracle) ranks the same catalogue.

Used by the unit test of the model (tests/unit/fyp/embeddings/test_two_tower_world.py) and by
`fyp bench two-tower`, which builds bigger worlds (more days per user) through the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from features.engagement.user_engagement import v1 as user_engagement
from features.engagement.video_engagement import v1 as video_engagement
from fyp.embeddings.data import DAY_MS, POSITIVE_LABELS, Positives, positives_from_columns
from fyp.embeddings.towers import TowerConfig
from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.training.backfill import backfill
from fyp.training.history import History
from training.watch_outcomes import v1 as watch_outcomes
from udfs.envelope import to_engagement_row

__all__ = ["POPULARITY_TOWERS", "SMALL_TOWERS", "TOWER_SET", "World", "world_history", "world_positives"]

TOWER_SET = replace(watch_outcomes, labels=tuple(label for label in watch_outcomes.labels
                                                 if label.name in POSITIVE_LABELS),
                    feature_sets=(user_engagement,))
# Hash tables for a world of a few thousand videos (the production defaults are sized for 50,000 and more).
SMALL_TOWERS = TowerConfig(video_buckets=4096, author_buckets=512, sound_buckets=256, hashtag_buckets=1024)
# The variant measured best on the unit test's world (docs/EMBEDDINGS.md, rounds of 2026-12-07): no video ids
# anywhere, the video's decayed 24 h counts as its popularity, no user features. Off by default: serving does not
# yet refresh item vectors as the counts change (the embedding job embeds a video once, at approval).
POPULARITY_TOWERS = replace(SMALL_TOWERS, video_ids=False, user_feature_columns=(),
                            video_feature_columns=("impressions_decay_24h", "plays_decay_24h",
                                                   "completions_decay_24h"))
_MAX_VIEWS = 2_000_000  # a bound on the work one call may ask for (the backfill holds every row in memory)


@dataclass(frozen=True, kw_only=True)
class World:
    """users, videos: the generator's initial world (TrafficConfig). seed: its seed. days: UTC days of traffic
    from start_ms (a UTC midnight). views_per_day: views each day, spread evenly in blocks of `block` views
    (each block one batch of the generator at one clock time)."""

    users: int = 500
    videos: int = 1_500
    seed: int = 11
    days: int = 3
    views_per_day: int = 16_000
    block: int = 500
    start_ms: int = 1_764_547_200_000  # 2025-12-01T00:00Z
    run_id: str = "0c1a2b3d-4e5f-4a6b-8c7d-000000000000"

    def __post_init__(self) -> None:
        for name in ("users", "videos", "days", "views_per_day", "block"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.days < 2:
            raise ValueError(f"days must be >= 2 (the last day is held out), got {self.days}")
        if self.views_per_day % self.block:
            raise ValueError(f"views_per_day ({self.views_per_day}) must be a multiple of block ({self.block})")
        if self.views > _MAX_VIEWS:
            raise ValueError(f"{self.views:,} views is more than {_MAX_VIEWS:,}")
        if self.start_ms % DAY_MS:
            raise ValueError(f"start_ms must be a UTC midnight, got {self.start_ms}")

    @property
    def views(self) -> int:
        return self.days * self.views_per_day

    @property
    def traffic(self) -> TrafficConfig:
        return TrafficConfig(users=self.users, videos=self.videos)


def world_history(world: World) -> History:
    """The world's views as the features job decodes them, spread evenly over its days."""
    now = [world.start_ms]
    generator = TrafficGenerator(world.traffic, world.seed, run_id=world.run_id, clock=lambda: now[0])
    rows = []
    blocks = world.views // world.block
    for b in range(blocks):
        now[0] = world.start_ms + (2 * b + 1) * world.days * DAY_MS // (2 * blocks)
        rows += [to_engagement_row(value, now_ms=now[0]) for _, value in generator.next_batch(world.block).pairs]
    if bad := sum(row[-1] is not None for row in rows):  # the generator makes no malformed events by default
        raise ValueError(f"{bad} of the generated events did not decode")
    return History(rows=rows, partitions=np.zeros(len(rows), dtype=np.int64), offsets=np.arange(len(rows)))


def world_positives(world: World, video_feature_columns: Sequence[str] = ()) -> Positives:
    """The world's training positives, through the point-in-time backfill of TOWER_SET (and of
    video_engagement.v1 too when the item tower's `video_feature_columns` are asked)."""
    declared = (replace(TOWER_SET, feature_sets=(*TOWER_SET.feature_sets, video_engagement))
                if video_feature_columns else TOWER_SET)
    built = backfill(declared, world_history(world))
    return positives_from_columns({name: built.table.column(name) for name in built.table.column_names},
                                  video_feature_columns=video_feature_columns)
