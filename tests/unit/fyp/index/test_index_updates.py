"""Records of fyp.video-embeddings.v1 to index changes: decoding (and the reasons a record is skipped) and
collapsing a batch to its net effect, on plain data."""

from __future__ import annotations

import numpy as np
import pytest

from fyp.index.updates import EmbeddingDecoder, Update, collapse
from schemas.registry import default_registry
from tests.unit.fyp.index.index_records import DIM, embedding


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (b"v1", None, Update("v1", None)),
        (None, None, "tombstone_without_key"),
        (b"v1", embedding("v1", deleted=True), Update("v1", None)),
        (b"v1", b"garbage", "undecodable"),
        (b"v1", embedding("v1", [1.0] * 3), "bad_vector"),
        (b"v1", embedding("v1", [0.0] * DIM), "bad_vector"),
        (b"v1", embedding("v1", [1.0] * DIM, model="other"), "other_model"),
    ],
)
def test_decoder(key, value, expected):
    assert EmbeddingDecoder(dim=DIM, model="clip-v1").parse(key, value) == expected


def test_decoder_normalises_vectors():
    parsed = EmbeddingDecoder(dim=DIM, model="clip-v1").parse(b"v1", embedding("v1", [2.0] * DIM))
    assert parsed.video_id == "v1"
    assert np.linalg.norm(parsed.vector) == pytest.approx(1.0)


def test_decoder_refuses_other_records():
    save = default_registry().encode(
        "Save",
        {
            "event_id": "e1",
            "event_time": 1,
            "user_id": "u1",
            "video_id": "v1",
            "author_id": "a1",
            "region": "US",
            "language": "en",
            "session_id": "s1",
        },
    )
    assert EmbeddingDecoder(dim=DIM, model="clip-v1").parse(b"v1", save) == "not_a_video_embedding"


def test_the_staged_model_is_kept_aside_other_models_refused_and_deletes_apply_whatever_the_model():
    decoder = EmbeddingDecoder(dim=DIM, model="clip-v1", staging="clip-v2")
    live, staged = (decoder.parse(b"v1", embedding("v1", [1.0] * DIM, model=m)) for m in ("clip-v1", "clip-v2"))
    assert not live.staged and staged.staged and staged.vector is not None
    assert decoder.parse(b"v1", embedding("v1", [1.0] * DIM, model="clip-v0")) == "other_model"
    assert decoder.last_model == "clip-v0"
    assert decoder.parse(b"v1", embedding("v1", deleted=True, model="clip-v0")) == Update("v1", None)


def test_a_decoder_that_serves_no_model_yet_refuses_every_vector():
    assert EmbeddingDecoder(dim=DIM, model=None).parse(b"v1", embedding("v1", [1.0] * DIM)) == "other_model"


def test_collapse_keeps_the_last_update_per_video():
    v = np.ones(DIM, np.float32)
    batch = collapse([Update("a", v), Update("b", None), Update("a", None), Update("b", v * 2)], DIM)
    assert batch.upsert_ids == ["b"] and batch.delete_ids == ["a"]
    assert batch.upsert_vectors.tolist() == [(v * 2).tolist()]
    empty = collapse([], DIM)
    assert empty.upsert_vectors.shape == (0, DIM)


def test_collapse_keeps_the_order_of_the_last_updates():
    v = np.ones(DIM, np.float32)
    batch = collapse([Update("a", v), Update("b", v), Update("c", v), Update("a", v * 3)], DIM)
    assert batch.upsert_ids == ["b", "c", "a"] and batch.delete_ids == []
    assert batch.upsert_vectors[2].tolist() == (v * 3).tolist()
