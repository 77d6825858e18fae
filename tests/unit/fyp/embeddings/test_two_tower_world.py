"""The two-tower model on a small generated world: seeded traffic (fyp.traffic) -> engagement rows (the features
job's decoder) -> training rows (fyp.training's point-in-time backfill, the code `fyp training-set build` runs)
-> training -> recall@K on the held-out last day against popularity and the generator's oracle
(fyp.embeddings.world builds the rows).
"""

from __future__ import annotations

import numpy as np
import pytest

from fyp.embeddings.data import DAY_MS, Positives
from fyp.embeddings.oracle import Oracle
from fyp.embeddings.train import TrainConfig, train_two_tower
from fyp.embeddings.world import SMALL_TOWERS, World, world_positives

WORLD = World(users=500, videos=1_500, seed=11, days=3, views_per_day=16_000)
DAYS, START_MS = WORLD.days, WORLD.start_ms
TOWERS = SMALL_TOWERS
LIFT_FLOOR = 0.25  # share of the oracle's lift over popularity at K=50 the model must reach (measured: 0.34-0.39)


@pytest.fixture(scope="module")
def positives() -> Positives:
    return world_positives(WORLD)


def test_the_backfilled_rows_give_the_towers_their_inputs(positives: Positives) -> None:
    assert len(positives) > 5_000 and len(positives.catalogue) > 800
    days = np.unique(positives.time_ms // DAY_MS)
    assert len(days) == DAYS
    # The history is the user's recent positives before the row, newest first: never the row's own video
    # because of this very row (a re-watch may find it there from an earlier positive).
    with_history = [i for i in range(len(positives)) if positives.recent_positives[i]]
    assert len(with_history) > 0.9 * len(positives)
    assert max(len(positives.recent_positives[i]) for i in with_history) == 50
    assert np.isfinite(positives.user_features).mean() > 0.5  # the user's features, as serving reads them


def test_the_model_beats_popularity_on_held_out_days(positives: Positives) -> None:
    oracle = Oracle(WORLD.traffic, WORLD.seed, positives.catalogue.video_ids, positives.catalogue.first_ms)
    result = train_two_tower(positives, tower=TOWERS, config=TrainConfig(batch_size=128, lr=1e-3, threads=2),
                             oracle=oracle)
    recall = result.recall
    print(f"\nrecall@K on {recall.queries} held-out positives ({result.epochs} epochs, validation recall@50 "
          f"by epoch {[round(r, 3) for r in result.validation]}):")
    for name in ("model", "popularity", "oracle"):
        print(f"  {name:<10} " + "  ".join(f"@{k} {recall.recall[name][k]:.4f}" for k in (10, 50, 100)))
    print("  share of the oracle's lift over popularity: "
          + "  ".join(f"@{k} {v:.2f}" for k, v in recall.lift.items()))
    assert recall.queries > 1_000 and result.test_from_ms == START_MS + (DAYS - 1) * DAY_MS
    assert 1 <= result.epochs <= len(result.validation)
    # The world is personal: knowing each user's tastes beats popularity by far, and nothing beats knowing.
    assert recall.recall["oracle"][50] > 1.5 * recall.popularity[50], recall
    assert recall.recall["oracle"][50] > recall.model[50], recall
    # The model beats popularity at every K and reaches a share of the oracle's lift at K=50; the target
    # of 0.9 is not reached (docs/EMBEDDINGS.md says why).
    assert all(recall.model[k] > recall.popularity[k] for k in (10, 50, 100)), recall
    assert recall.lift[50] >= LIFT_FLOOR, recall
