"""The two-tower model on a small generated world: seeded traffic (fyp.traffic) -> engagement rows (the features
job's decoder) -> training rows (fyp.training's point-in-time backfill, the code `fyp training-set build` runs)
-> training -> recall@K on the held-out last day against popularity and the generator's oracle.

The declaration is training/watch_outcomes.py's with only what the towers read (the positive labels, the user's
features and recent positives): the other feature sets would only make the backfill longer.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from features.engagement.user_engagement import v1 as user_engagement
from fyp.embeddings.data import DAY_MS, POSITIVE_LABELS, Positives, positives_from_columns
from fyp.embeddings.oracle import Oracle
from fyp.embeddings.towers import TowerConfig
from fyp.embeddings.train import TrainConfig, train_two_tower
from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.training.backfill import backfill
from fyp.training.history import History
from training.watch_outcomes import v1 as watch_outcomes
from udfs.envelope import to_engagement_row

WORLD = TrafficConfig(users=500, videos=1_500)
SEED = 11
DAYS, VIEWS, BLOCK = 3, 48_000, 500
START_MS = 1_764_547_200_000  # 2025-12-01T00:00Z
RUN_ID = "0c1a2b3d-4e5f-4a6b-8c7d-000000000000"
TOWERS = TowerConfig(video_buckets=4096, author_buckets=512, sound_buckets=256, hashtag_buckets=1024)
LIFT_FLOOR = 0.25  # share of the oracle's lift over popularity at K=50 the model must reach (measured: 0.34-0.39)
TOWER_SET = replace(watch_outcomes, labels=tuple(label for label in watch_outcomes.labels
                                                 if label.name in POSITIVE_LABELS),
                    feature_sets=(user_engagement,))


def _history() -> History:
    """VIEWS views spread evenly over DAYS days, as the features job decodes them."""
    now = [START_MS]
    generator = TrafficGenerator(WORLD, SEED, run_id=RUN_ID, clock=lambda: now[0])
    rows = []
    blocks = VIEWS // BLOCK
    for b in range(blocks):
        now[0] = START_MS + (2 * b + 1) * DAYS * DAY_MS // (2 * blocks)
        rows += [to_engagement_row(value, now_ms=now[0]) for _, value in generator.next_batch(BLOCK).pairs]
    assert all(row[-1] is None for row in rows)  # no malformed events in this world
    return History(rows=rows, partitions=np.zeros(len(rows), dtype=np.int64), offsets=np.arange(len(rows)))


@pytest.fixture(scope="module")
def positives() -> Positives:
    built = backfill(TOWER_SET, _history())
    return positives_from_columns({name: built.table.column(name) for name in built.table.column_names})


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
    oracle = Oracle(WORLD, SEED, positives.catalogue.video_ids, positives.catalogue.first_ms)
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
