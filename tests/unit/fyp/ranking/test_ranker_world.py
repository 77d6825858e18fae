"""The fine ranker on a small generated world: trained on the backfilled training table of two days, judged on
the third, and the exported ONNX model must score exactly as the torch model does.

Measured here (threads 1, seed 0): AUC completed 0.695 (popularity 0.675), liked 0.708 (0.678), shared 0.692
(0.654), followed 0.674 (0.673), skipped 0.639 (0.636). The first three beat popularity clearly and are asserted
to; followed (82 positives on the test day: an AUC's standard error there is ~0.03) and skipped only tie with it,
so they are asserted not to fall more than TIE below it. Beating popularity on those two is open (#20)."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from fyp.ranking.combine import combined_score, head_weights
from fyp.ranking.inputs import HEADS
from fyp.ranking.runtime import RankerRuntime, to_onnx
from fyp.ranking.store import deserialize, serialize
from fyp.ranking.train import RankerConfig, TrainedRanker, train_ranker
from fyp.training.backfill import backfill
from fyp.training.table import feature_columns
from tests.unit.fyp.embeddings.test_two_tower_world import _history
from training.watch_outcomes import v1 as watch_outcomes

CONFIG = RankerConfig(threads=1, logistic_rows=10_000)
CLEAR_WINS = ("completed", "liked", "shared")
MARGIN = 0.01  # what the clear wins must beat popularity by
TIE = 0.01


@pytest.fixture(scope="module")
def columns() -> dict[str, np.ndarray]:
    table = backfill(watch_outcomes, _history()).table
    found = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names
             if c not in ("hashtags", "recent_positives")}
    found["event_time"] = pc.cast(table.column("event_time"), "int64").to_numpy() // 1000  # us -> ms
    return found


@pytest.fixture(scope="module")
def trained(columns: dict[str, np.ndarray]) -> TrainedRanker:
    return train_ranker(columns, feature_columns(watch_outcomes), CONFIG)


def test_the_heads_against_popularity_on_the_held_out_day(trained: TrainedRanker) -> None:
    report = {m.head: (m.positives, m.auc, m.popularity_auc, m.logistic_auc) for m in trained.metrics}
    print(f"\nrows {trained.rows}, best epoch {trained.best_epoch}, seconds {trained.seconds}")
    for head, (positives, auc, popularity, logistic) in report.items():
        print(f"{head:>10}: {positives:>5} positives, AUC {auc:.4f}, popularity {popularity:.4f}, "
              f"logistic {logistic:.4f}")
    assert tuple(report) == HEADS
    assert all(positives >= 50 for positives, *_ in report.values()), report
    assert all(report[head][1] > report[head][2] + MARGIN for head in CLEAR_WINS), report
    assert all(auc > popularity - TIE for _, auc, popularity, _ in report.values()), report


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
