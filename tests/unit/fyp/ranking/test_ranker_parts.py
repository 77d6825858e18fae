"""The ranker's pure parts: inputs, head weights, the time split, popularity, the versioned file."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest

from fyp.ranking.combine import DEFAULT_HEAD_WEIGHTS, combined_score, head_weights
from fyp.ranking.inputs import InputSpec, fit_inputs, transform
from fyp.ranking.store import deserialize, serialize
from fyp.ranking.train import DAY_MS, popularity_scores, time_split

SETS = (("a", ("a__x", "a__y")), ("b", ("b__z",)))


def test_inputs_are_logged_standardised_and_flag_a_set_with_no_values() -> None:
    train = {"a__x": np.array([0.0, 9.0, 99.0]), "a__y": np.array([1.0, 1.0, 1.0]), "b__z": np.array([np.nan] * 3)}
    spec = fit_inputs(train, SETS)
    assert spec.width == 5 and spec.std[1] == 1.0  # a constant column keeps deviation 1
    rows = transform(spec, {"a__x": np.array([9.0, np.nan]), "a__y": np.array([1.0, np.nan]),
                            "b__z": np.array([np.nan, 5.0])})
    assert rows.dtype == np.float32 and rows.shape == (2, 5)
    assert rows[1, 0] == 0.0 and rows[1, 3] == 1.0 and rows[0, 3] == 0.0  # set a all missing in row 1 only
    assert rows[0, 4] == 1.0 and rows[1, 4] == 0.0
    assert InputSpec.from_json(spec.to_json()) == spec


def test_a_missing_input_column_is_a_clear_error() -> None:
    spec = fit_inputs({"a__x": np.ones(2), "a__y": np.ones(2), "b__z": np.ones(2)}, SETS)
    with pytest.raises(ValueError, match="1 input columns missing"):
        transform(spec, {"a__x": np.ones(2), "a__y": np.ones(2)})


def test_head_weights_take_arm_overrides_and_refuse_bad_ones() -> None:
    assert head_weights() == dict(DEFAULT_HEAD_WEIGHTS)
    assert head_weights({"ranker.weights.liked": 3, "feed.other": "x"})["liked"] == 3.0
    with pytest.raises(ValueError, match="no head 'watched'"):
        head_weights({"ranker.weights.watched": 1})
    for bad in ("2", True, float("nan"), 1e9):
        with pytest.raises(ValueError, match="weight must be a number"):
            head_weights({"ranker.weights.liked": bad})
    probabilities = np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32)
    assert combined_score(probabilities, head_weights()).tolist() == [1.0, -1.0]


def test_the_split_holds_out_the_last_days_and_validates_on_the_latest_training_rows() -> None:
    times = np.array([3 * DAY_MS + 5, 0, DAY_MS + 1, 2 * DAY_MS, 1, DAY_MS + 2, 3 * DAY_MS])
    train, validation, test = time_split(times, test_days=1, validation_fraction=0.2)
    assert sorted(test.tolist()) == [0, 6]
    assert times[validation].min() >= times[train].max()
    assert len(train) + len(validation) + len(test) == len(times)
    with pytest.raises(ValueError, match="leaves none to train on"):
        time_split(np.array([0, 1]), test_days=1, validation_fraction=0.1)
    train, validation, test = time_split(np.arange(10)[::-1].copy(), test_days=1, validation_fraction=0.25,
                                         test_fraction=0.2)
    assert sorted(test.tolist()) == [0, 1] and sorted(validation.tolist()) == [2, 3] and len(train) == 6


def test_popularity_is_a_smoothed_rate_and_unknown_videos_get_the_overall_rate() -> None:
    scores = popularity_scores(["v1"] * 20 + ["v2"] * 20, np.array([1.0] * 20 + [0.0] * 20), ["v1", "v2", "new"])
    assert scores.tolist() == [0.75, 0.25, 0.5]


def test_the_ranker_file_is_checked_when_read() -> None:
    version, data = serialize(b"graph", {"spec": "{}"})
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", version)
    assert deserialize(data) == (b"graph", {"spec": "{}"})
    with pytest.raises(ValueError, match="not a ranker file"):
        deserialize(b"not a zip")
    extra = io.BytesIO()
    with zipfile.ZipFile(extra, "w") as archive:
        archive.writestr("model.onnx", b"x")
        archive.writestr("card.json", b"{}")
        archive.writestr("run.py", b"import os")
    with pytest.raises(ValueError, match=r"expected model\.onnx and card\.json"):
        deserialize(extra.getvalue())


def test_tied_heads_are_scaled_and_offset_copies_of_one_direction() -> None:
    import torch

    from fyp.ranking.model import MultiTaskRanker

    torch.manual_seed(0)
    model = MultiTaskRanker(6, (8,), tied=(1, 2))
    with torch.no_grad():
        model.scale.copy_(torch.tensor([1.0, 2.0, -3.0, 1.0, 1.0]))
        logits = model.logits(torch.randn(50, 6)).numpy()
    bias = model.heads.bias.detach().numpy()
    np.testing.assert_allclose((logits[:, 2] - bias[2]) / -3.0, (logits[:, 1] - bias[1]) / 2.0, rtol=1e-4, atol=1e-5)
    assert np.corrcoef(logits[:, 0], logits[:, 1])[0, 1] < 0.999  # an untied head has its own direction


def test_the_config_refuses_an_unknown_tied_head() -> None:
    from fyp.ranking.train import RankerConfig

    with pytest.raises(ValueError, match="no head"):
        RankerConfig(tied=("liked", "saved"))
