"""A trained two-tower model goes to the stack's S3 (SeaweedFS) and comes back identical; keys are checked."""

from __future__ import annotations

import uuid

import pytest
import torch

from fyp.embeddings.store import ModelNotFound, latest_s3, save_s3, serialize
from fyp.embeddings.towers import TowerConfig, TwoTower
from fyp.index.snapshot import S3ObjectStore
from fyp.media.keys import InvalidKey
from fyp.media.publish import make_s3_client


def test_model_round_trips_through_s3(settings) -> None:
    store = S3ObjectStore(make_s3_client(settings), settings.media_bucket)
    prefix = f"models/it-two-tower-{uuid.uuid4().hex[:8]}/"  # never the real models/two-tower/LATEST
    with pytest.raises(ModelNotFound):
        latest_s3(store, prefix=prefix)
    model = TwoTower(TowerConfig(video_buckets=512, author_buckets=64, sound_buckets=16)).eval()
    version, blob = serialize(model, {"recall": {"10": 0.1}})
    key = save_s3(store, version, blob, prefix=prefix)
    try:
        assert key == f"{prefix}{version}/model.pt"
        loaded = latest_s3(store, prefix=prefix)
        assert loaded.version == version and loaded.info == {"recall": {"10": 0.1}}
        assert loaded.name == f"two-tower-{version}"  # the model id its vectors carry
        # Every weight and buffer comes back (a fresh model's random weights would differ).
        saved, back = model.state_dict(), loaded.model.state_dict()
        assert saved.keys() == back.keys()
        for name, tensor in saved.items():
            torch.testing.assert_close(back[name], tensor, msg=name)
        with pytest.raises(InvalidKey):
            save_s3(store, version, blob, prefix="models/../escape/")
    finally:
        store.delete(list(store.list_keys(prefix)))
