"""The fine ranker on a small generated world: trained on the backfilled training table of two days, judged on
the third against popularity and against the ceiling (the generator's true probabilities of each head on the
same rows, fyp/ranking/ceiling.py), and the exported ONNX model must score exactly as the torch model does.

Every head must beat popularity by MARGIN on the held-out day, and by more than zero in at least
BOOTSTRAP_SHARE of paired bootstrap resamples of the test rows (so the win is not one lucky draw of rows).
The measured figures are in docs/FEED.md ("The fine ranker"); this test prints them."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from fyp.embeddings.world import World, world_history
from fyp.ranking.ceiling import world_probabilities
from fyp.ranking.combine import combined_score, head_weights
from fyp.ranking.inputs import HEADS
from fyp.ranking.runtime import RankerRuntime, to_onnx
from fyp.ranking.store import deserialize, serialize
from fyp.ranking.train import RankerConfig, TrainedRanker, train_ranker
from fyp.training.backfill import backfill
from fyp.training.table import feature_columns
from training.watch_outcomes import v1 as watch_outcomes

WORLD = World()  # the two-tower test's world: 500 users, 1,500 videos, 3 days of 16,000 views, seed 11
CONFIG = RankerConfig(threads=1, logistic_rows=10_000)
# Skips: the ceiling is 0.025 above popularity and 0.016 of it is the taste match (docs/FEED.md): no 0.01 margin yet.
MARGIN = {"completed": 0.01, "liked": 0.01, "shared": 0.01, "followed": 0.01, "skipped": 0.0}
BOOTSTRAP_ROUNDS, BOOTSTRAP_SHARE = 200, 0.75  # measured: followed (82 test positives) wins in 81 %


@pytest.fixture(scope="module")
def columns() -> dict[str, np.ndarray]:
    table = backfill(watch_outcomes, world_history(WORLD)).table
    found = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names
             if c not in ("hashtags", "recent_positives")}
    found["event_time"] = pc.cast(table.column("event_time"), "int64").to_numpy() // 1000  # us -> ms
    return found


@pytest.fixture(scope="module")
def trained(columns: dict[str, np.ndarray]) -> TrainedRanker:
    return train_ranker(columns, feature_columns(watch_outcomes), CONFIG)


def _bootstrap_wins(y: np.ndarray, model: np.ndarray, popularity: np.ndarray) -> float:
    """Share of paired resamples of the test rows where the model's AUC beats popularity's."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    wins = 0
    for _ in range(BOOTSTRAP_ROUNDS):
        pick = rng.integers(len(y), size=len(y))
        wins += roc_auc_score(y[pick], model[pick]) > roc_auc_score(y[pick], popularity[pick])
    return wins / BOOTSTRAP_ROUNDS


def test_the_heads_against_popularity_and_the_ceiling_on_the_held_out_day(
        trained: TrainedRanker, columns: dict[str, np.ndarray]) -> None:
    import torch
    from sklearn.metrics import roc_auc_score

    from fyp.ranking.inputs import transform
    from fyp.ranking.train import popularity_scores, time_split

    train, _, test = time_split(columns["event_time"], test_days=CONFIG.test_days,
                                validation_fraction=CONFIG.validation_fraction)
    truth = world_probabilities(WORLD.traffic, WORLD.seed, [str(u) for u in columns["user_id"][test]],
                                [str(v) for v in columns["video_id"][test]])
    with torch.no_grad():
        predicted = trained.model(torch.from_numpy(transform(trained.spec, columns)[test])).numpy()
    videos = [str(v) for v in columns["video_id"]]
    print(f"\nrows {trained.rows}, best epoch {trained.best_epoch}, seconds {trained.seconds}")
    assert tuple(m.head for m in trained.metrics) == HEADS
    for h, m in enumerate(trained.metrics):
        y = columns[f"label_{m.head}"][test].astype(np.int64)
        popularity = popularity_scores([videos[i] for i in train], columns[f"label_{m.head}"][train].astype(float),
                                       [videos[i] for i in test])
        ceiling = roc_auc_score(y, truth[m.head])
        wins = _bootstrap_wins(y, predicted[:, h], popularity)
        print(f"{m.head:>10}: {m.positives:>5} positives, AUC {m.auc:.4f}, popularity {m.popularity_auc:.4f}, "
              f"logistic {m.logistic_auc:.4f}, ceiling {ceiling:.4f}; beats popularity in {wins:.0%} of "
              f"{BOOTSTRAP_ROUNDS} resamples")
        assert m.positives >= 50, m
        assert m.auc > m.popularity_auc + MARGIN[m.head], m
        assert wins >= BOOTSTRAP_SHARE, (m, wins)
        assert m.auc < ceiling + 0.01, (m, ceiling)  # nothing learnt from the events beats the truth


def test_the_exported_model_scores_as_torch_does(trained: TrainedRanker, columns: dict[str, np.ndarray]) -> None:
    import torch

    from fyp.ranking.inputs import InputSpec, transform

    version, data = serialize(to_onnx(trained.model, trained.spec.width), {"spec": trained.spec.to_json()})
    onnx, card = deserialize(data)
    runtime = RankerRuntime(onnx, InputSpec.from_json(card["spec"]))
    rows = {name: values[:100] for name, values in columns.items()}
    with torch.no_grad():
        expected = trained.model(torch.from_numpy(transform(trained.spec, rows))).numpy()
    got = runtime.predict(rows)
    assert got.shape == (100, len(HEADS))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert combined_score(got, head_weights()).shape == (100,)
    assert version.split("-")[0].endswith("Z")
