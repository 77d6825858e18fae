"""Two-tower model: tower shapes, the logQ correction against a hand computation, the streaming frequency
estimator, a tiny training run that must beat popularity, save/load, and the training-data builder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fyp.embeddings.data import interactions_from_columns
from fyp.embeddings.encoders import ItemEncoder, UserEncoder
from fyp.embeddings.evaluate import recall_at_k
from fyp.embeddings.logq import StreamingFrequency, in_batch_softmax_loss
from fyp.embeddings.meta import USER_FEATURE_DIM, UserFeatures, UserHistory, VideoMeta
from fyp.embeddings.store import latest_local, load_bytes, save_local, serialize
from fyp.embeddings.towers import TowerConfig, TwoTower
from fyp.embeddings.train import TrainConfig, train_two_tower

SMALL = TowerConfig(content_dim=16, output_dim=64, hidden_dim=32, id_dim=16, video_buckets=4096,
                    author_buckets=256, sound_buckets=64, history_len=10, temperature=0.1)


def test_towers_give_unit_rows_of_output_dim() -> None:
    model = TwoTower(SMALL).eval()
    items = model.item(torch.randn(5, 16), torch.tensor([1, 2, 3, 4, 0]), torch.tensor([1, 1, 0, 2, 3]),
                       torch.zeros(5, dtype=torch.long))
    users = model.user(torch.tensor([[0] * 9 + [5], [0] * 10]), torch.randn(2, USER_FEATURE_DIM))
    assert items.shape == (5, 64) and users.shape == (2, 64)
    np.testing.assert_allclose(items.norm(dim=1).detach().numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(users.norm(dim=1).detach().numpy(), 1.0, rtol=1e-5)


def test_unseen_ids_contribute_nothing() -> None:
    model = TwoTower(SMALL).eval()
    content = torch.randn(1, 16)
    zero = torch.zeros(1, dtype=torch.long)
    base = model.item(content, zero, zero, zero)
    unseen = model.item(content, torch.tensor([7]), zero, zero)
    torch.testing.assert_close(base, unseen)  # bucket 7 never trained: like no id at all
    model.item.video.mark_seen(torch.tensor([7]))
    assert not torch.allclose(base, model.item(content, torch.tensor([7]), zero, zero))


@pytest.mark.parametrize("name", ["output_dim", "history_len"])
def test_tower_config_rejects_nonsense(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        TowerConfig(**{name: 0})


def test_logq_loss_matches_hand_computation() -> None:
    user = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    item = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    q = torch.tensor([0.5, 0.1])
    # Row 0: logits [0.6/0.5 - ln .5, 1/0.5 - ln .1]; label 0. Row 1: [0.8/0.5 - ln .5, 0 - ln .1]; label 1.
    r0 = [1.2 - math.log(0.5), 2.0 - math.log(0.1)]
    r1 = [1.6 - math.log(0.5), 0.0 - math.log(0.1)]
    expected = 0.5 * ((math.log(sum(map(math.exp, r0))) - r0[0]) + (math.log(sum(map(math.exp, r1))) - r1[1]))
    got = in_batch_softmax_loss(user, item, temperature=0.5, log_q=torch.log(q))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    plain = in_batch_softmax_loss(user, item, temperature=0.5)
    assert plain.item() != pytest.approx(expected, rel=1e-3)  # the correction changes the loss
    uniform = in_batch_softmax_loss(user, item, temperature=0.5, log_q=torch.log(torch.tensor([0.3, 0.3])))
    assert uniform.item() == pytest.approx(plain.item(), rel=1e-6)  # a constant shift cancels


def test_duplicate_items_in_a_batch_are_not_negatives() -> None:
    user = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    item = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ids = torch.tensor([4, 4, 9])
    masked = in_batch_softmax_loss(user, item, temperature=1.0, item_ids=ids)
    # Rows 0 and 1 (item 4) skip each other's copy: -log(e / (e + 1)). Row 2 (item 9) sees both copies of 4
    # as negatives: -log(e / (e + 2)).
    expected = (2 * -math.log(math.e / (math.e + 1)) - math.log(math.e / (math.e + 2))) / 3
    assert masked.item() == pytest.approx(expected, rel=1e-6)
    unmasked = in_batch_softmax_loss(user, item, temperature=1.0)
    assert unmasked.item() > masked.item()


def test_streaming_frequency_tracks_rates() -> None:
    f = StreamingFrequency(n_buckets=16, alpha=0.1)
    rng = np.random.default_rng(0)
    for step in range(1, 2001):
        batch = [1] * 4 + ([2] if step % 2 == 0 else []) + ([3] if rng.random() < 0.1 else [])
        f.update(np.array(batch), step)
    p = f.probability(np.array([1, 2, 3]))
    assert p[0] == pytest.approx(4.0, rel=0.05)  # 4 per step
    assert p[1] == pytest.approx(0.5, rel=0.05)  # every other step
    assert p[2] == pytest.approx(0.1, rel=0.5)  # ~1 in 10 steps, noisy
    assert f.probability(np.array([5]))[0] == pytest.approx(1.0)  # never seen: the prior


def _synthetic(seed: int, *, users: int = 300, clusters: int = 8, per_cluster: int = 40, positives: int = 30):
    """Users with a taste cluster: 85 % of positives from their cluster, the rest by global popularity.
    Popularity is Zipf over the whole catalogue, so a popularity ranking gets the heads of every cluster."""
    rng = np.random.default_rng(seed)
    n_items = clusters * per_cluster
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rng.shuffle(popularity)
    cluster_of = np.arange(n_items) // per_cluster
    within = popularity.reshape(clusters, per_cluster)
    within_cdf = np.cumsum(within / within.sum(axis=1, keepdims=True), axis=1)
    global_cdf = np.cumsum(popularity / popularity.sum())
    n = users * positives
    user = np.repeat(np.arange(users), positives)
    taste = rng.integers(clusters, size=users)[user]
    own = taste * per_cluster + np.minimum((rng.random(n)[:, None] > within_cdf[taste]).sum(axis=1), per_cluster - 1)
    anywhere = np.minimum(np.searchsorted(global_cdf, rng.random(n)), n_items - 1)
    video = np.where(rng.random(n) < 0.85, own, anywhere)
    time = 1_700_000_000_000 + np.cumsum(rng.integers(1, 50, size=n))  # interleave users over time
    time = time[rng.permutation(n)]
    kinds = ("impression", "like")
    return {
        "event_type": [k for _ in range(n) for k in kinds],
        "event_time": np.repeat(time, 2).tolist(),
        "user_id": [f"u{u}" for u in np.repeat(user, 2)],
        "video_id": [f"v{v}" for v in np.repeat(video, 2)],
        "author_id": [f"a{v % 50}" for v in np.repeat(video, 2)],
        "sound_id": [None] * 2 * n,
        "hashtags": [[f"tag{cluster_of[v]}"] for v in np.repeat(video, 2)],
        "watch_ms": [None] * 2 * n, "video_duration_ms": [None] * 2 * n, "dwell_ms": [None] * 2 * n,
        "action": [None, "LIKE"] * n,
    }


def test_training_beats_popularity_on_users_with_tastes() -> None:
    data = interactions_from_columns(_synthetic(1), history_len=SMALL.history_len)
    content = np.random.default_rng(2).standard_normal((len(data.videos), 16)).astype(np.float32)  # no signal
    result = train_two_tower(data, content, tower=SMALL,
                             config=TrainConfig(epochs=3, batch_size=128, lr=1e-2, ks=(10, 50), threads=1))
    recall = result.recall
    assert recall.queries == result.test_positives > 300
    assert recall.model[10] > 1.5 * recall.popularity[10], recall
    assert recall.model[50] > recall.popularity[50], recall


def test_interactions_features_and_history_come_from_earlier_rows_only() -> None:
    rows = {"event_type": ["impression", "watch", "impression", "watch", "like", "skip"],
            "event_time": [1000, 1001, 2000, 2001, 2002, 3000],
            "user_id": ["u1"] * 6, "video_id": ["v1", "v1", "v2", "v2", "v2", "v3"],
            "author_id": ["a1", "a1", "a2", "a2", "a2", "a3"], "sound_id": [None] * 6,
            "hashtags": [["x"], ["x"], [], [], [], ["y"]],
            "watch_ms": [None, 9800, None, 1000, None, None],
            "video_duration_ms": [None, 10000, None, 30000, None, 5000],
            "dwell_ms": [None] * 5 + [300], "action": [None] * 4 + ["LIKE", None]}
    data = interactions_from_columns(rows, history_len=3)
    assert [data.videos[v].video_id for v in data.video] == ["v1", "v2"]  # completion, then the like
    assert data.history.tolist() == [[-1, -1, -1], [-1, -1, 0]]
    expected_v2 = UserFeatures(impressions=2, plays=2, watch_ms=10_800, completions=1).vector()
    np.testing.assert_allclose(data.features[1], expected_v2, rtol=1e-6)
    np.testing.assert_allclose(data.features[0], UserFeatures(impressions=1).vector(), rtol=1e-6)
    assert data.videos[2].hashtags == ("y",) and data.videos[0].duration_ms == 10_000


def test_recall_excludes_history_and_ranks_popularity() -> None:
    items = np.eye(4, dtype=np.float32)
    users = np.array([[0, 0, 1, 0], [1, 0, 0, 0]], dtype=np.float32)
    report = recall_at_k(users, items, targets=np.array([2, 1]), exclude=np.array([[-1], [0]]),
                         popularity=np.array([9, 5, 1, 0]), ks=(1, 2))
    # Model: row 0 -> 2 (hit@1); row 1 -> 0 excluded, then ties at 0 -> 1 (hit@1). Popularity: 0, 1, 2, 3.
    assert report.model == {1: 1.0, 2: 1.0}
    assert report.popularity == {1: 0.5, 2: 0.5}
    assert report.ratio[1] == pytest.approx(2.0)


def test_save_load_round_trip(tmp_path) -> None:
    model = TwoTower(SMALL).eval()
    model.item.video.mark_seen(torch.tensor([3, 9]))
    version, data = serialize(model, {"recall": {"10": 0.5}})
    save_local(tmp_path, version, data)
    loaded = latest_local(tmp_path)
    assert loaded.version == version and loaded.name == f"two-tower-{version}" and loaded.info["recall"]
    content = torch.randn(3, 16)
    ids = torch.tensor([3, 9, 11])
    torch.testing.assert_close(model.item(content, ids, ids, ids), loaded.model.item(content, ids, ids, ids))
    assert bool(loaded.model.item.video.seen[9]) and not bool(loaded.model.item.video.seen[11])
    with pytest.raises(ValueError, match="not a fyp-two-tower"):
        load_bytes(torch.save({"x": 1}, tmp_path / "bad.pt") or (tmp_path / "bad.pt").read_bytes(), version)


class _Text:
    """Encodes text deterministically for the encoder plumbing test (the MiniLM test is in test_embeddings_content)."""

    dim = 384

    def encode(self, texts):
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, t in enumerate(texts):
            if t:
                out[i, sum(map(ord, t)) % 384] = 1.0
        return out


def test_encoders_with_a_trained_model_give_unit_rows(tmp_path) -> None:
    from fyp.embeddings.content import ContentEncoder
    from fyp.embeddings.store import LoadedModel

    loaded = LoadedModel(TwoTower(TowerConfig(video_buckets=1024, author_buckets=64, sound_buckets=16)), "v", {})
    items = ItemEncoder(loaded, ContentEncoder(_Text()))
    videos = [VideoMeta(video_id="v1", caption="a"), VideoMeta(video_id="v2", hashtags=("b",), duration_ms=9000)]
    vectors = items.encode(videos)
    assert vectors.shape == (2, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors, items.encode(videos))
    users = UserEncoder(loaded).encode([UserHistory(video_ids=("v1",)), UserHistory()], [UserFeatures(plays=2), None])
    assert users.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="feature rows"):
        UserEncoder(loaded).encode([UserHistory()], [None, None])
