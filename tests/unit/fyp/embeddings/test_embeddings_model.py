"""Two-tower model: the input functions, tower shapes, the logQ loss against a hand computation, the streaming
frequency estimator, the training rows from the training table, recall@K, save/load and the encoders."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
import torch

from fyp.embeddings.data import Catalogue, Positives, positives_from_columns, table_columns
from fyp.embeddings.encoders import ItemEncoder, UserEncoder
from fyp.embeddings.evaluate import popularity_scorer, recall_at_k
from fyp.embeddings.inputs import USER_FEATURE_COLUMNS, item_inputs, user_feature_matrix, user_inputs
from fyp.embeddings.logq import StreamingFrequency, in_batch_softmax_loss
from fyp.embeddings.meta import UserFeatures, UserHistory, VideoMeta
from fyp.embeddings.store import LoadedModel, latest_local, load_bytes, save_local, serialize
from fyp.embeddings.towers import TowerConfig, TwoTower

SMALL = TowerConfig(output_dim=16, hidden_dim=32, id_dim=8, video_buckets=512, author_buckets=64, sound_buckets=32,
                    hashtag_buckets=64, max_hashtags=4, history_len=5, temperature=0.1)
NO_FEATURES = np.full((1, len(USER_FEATURE_COLUMNS)), np.nan)


# --- the input functions ---------------------------------------------------------------------------------


def test_user_inputs_read_the_newest_positives_first_and_pad_with_zero() -> None:
    x = user_inputs([[f"v{i}" for i in range(8)], [], None], np.full((3, len(USER_FEATURE_COLUMNS)), np.nan), SMALL)
    one = user_inputs([["v0"]], NO_FEATURES, SMALL).history[0, 0]
    assert x.history.shape == (3, SMALL.history_len)
    assert x.history[0, 0] == one  # position 0 is the newest member, as Redis ZREVRANGE gives it
    assert (x.history[0] > 0).all() and not x.history[1:].any()  # the first history_len read; none for the others
    assert x.features.shape == (3, SMALL.user_feature_dim) and (x.features[:, -1] == 1.0).all()  # "no value"


def test_user_features_are_log_counts_and_clipped_ratios() -> None:
    raw = user_feature_matrix([{"plays_24h": 4.0, "watch_ms_24h": 9_000.0, "completion_rate_24h": 1.5,
                                "likes_24h": -2.0, "skip_rate_1h": float("nan")}])
    f = user_inputs([["v1"]], raw, SMALL).features[0]
    column = {c: i for i, c in enumerate(USER_FEATURE_COLUMNS)}
    assert f[column["plays_24h"]] == pytest.approx(math.log1p(4.0))
    assert f[column["watch_ms_24h"]] == pytest.approx(math.log1p(9.0))  # seconds
    assert f[column["likes_24h"]] == pytest.approx(-math.log1p(2.0))  # likes minus unlikes may be negative
    assert f[column["completion_rate_24h"]] == 1.0 and f[column["skip_rate_1h"]] == 0.0
    assert f[-1] == 0.0  # the user had values
    with pytest.raises(ValueError, match="user_features must be"):
        user_inputs([["v1"]], raw[:, :3], SMALL)


def test_item_inputs_read_ids_and_distinct_hashtags() -> None:
    x = item_inputs(["v1", "v2"], ["a1", None], [None, "s1"], [["Cats", "#cats", "dogs"], None], SMALL)
    assert x.sound[0] == 0 and x.author[1] == 0 and x.sound[1] > 0
    assert (x.hashtags[0] > 0).sum() == 2 and not x.hashtags[1].any()
    again = item_inputs(["v1"], ["a1"], [None], [("cats", "dogs")], SMALL)
    assert (again.hashtags[0] == x.hashtags[0]).all() and again.video[0] == x.video[0]
    with pytest.raises(ValueError, match="same length"):
        item_inputs(["v1"], [], [], [], SMALL)


# --- towers -----------------------------------------------------------------------------------------------


def test_towers_give_unit_rows_of_output_dim() -> None:
    model = TwoTower(SMALL).eval()
    items = model.item.encode(item_inputs(["v1", "v2", "v3"], ["a1", "a1", None], [None] * 3,
                                          [["x"], [], ["y", "z"]], SMALL))
    users = model.user.encode(user_inputs([["v1", "v2"], []], np.full((2, len(USER_FEATURE_COLUMNS)), np.nan),
                                          SMALL))
    assert items.shape == (3, 16) and users.shape == (2, 16)
    np.testing.assert_allclose(items.norm(dim=1).detach().numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(users.norm(dim=1).detach().numpy(), 1.0, rtol=1e-5)


def test_unseen_ids_contribute_nothing() -> None:
    model = TwoTower(SMALL).eval()
    zero, tags = torch.zeros(1, dtype=torch.long), torch.zeros(1, SMALL.max_hashtags, dtype=torch.long)
    base = model.item(zero, zero, zero, tags)
    unseen = model.item(torch.tensor([7]), zero, zero, tags)
    torch.testing.assert_close(base, unseen)  # bucket 7 never trained: like no id at all
    model.item.video.mark_seen(torch.tensor([7]))
    assert not torch.allclose(base, model.item(torch.tensor([7]), zero, zero, tags))


def test_the_user_tower_reads_a_history_video_through_what_training_saw_of_it() -> None:
    model = TwoTower(SMALL).eval()
    video = item_inputs(["v1"], ["a1"], [None], [["cats"]], SMALL)
    model.item.author.mark_seen(torch.from_numpy(video.author))
    model.item.hashtag.mark_seen(torch.from_numpy(video.hashtags).flatten())
    user = user_inputs([["v1"]], NO_FEATURES, SMALL)
    before = model.user.encode(user)
    torch.testing.assert_close(before, model.user.encode(user_inputs([[]], NO_FEATURES, SMALL)))  # v1 unknown yet
    model.item.remember(video)  # training's catalogue: v1 is by a1, tagged cats
    assert model.item.known(torch.from_numpy(video.video))[0].item() == video.author[0]
    assert not torch.allclose(before, model.user.encode(user))


def test_learned_tag_weights_and_history_attention_change_the_pools_and_survive_a_round_trip(tmp_path) -> None:
    config = replace(SMALL, tag_weights=True, history_pool="attention")
    model = TwoTower(config).eval()
    videos = item_inputs(["v1", "v2"], ["a1", "a2"], [None] * 2, [["cats", "fyp"], ["dogs"]], config)
    for table in (model.item.video, model.item.author, model.item.hashtag):
        table.mark_seen(torch.arange(1, table.seen.shape[0]))
    model.item.remember(videos)
    users = user_inputs([["v1", "v2"]], NO_FEATURES, config)
    items_before, user_before = model.item.encode(videos), model.user.encode(users)
    with torch.no_grad():  # zero-initialised: even means until trained
        model.user.attention.bias.fill_(1.0)  # a constant score: the same weights, the same pool
    torch.testing.assert_close(model.user.encode(users), user_before)
    with torch.no_grad():
        model.item.tag_weight.weight[videos.hashtags[0, 1]] = 3.0
    assert not torch.allclose(items_before[0], model.item.encode(videos)[0])  # v1's "fyp" now outweighs "cats"
    torch.testing.assert_close(items_before[1], model.item.encode(videos)[1])  # v2 has one tag: no change
    with torch.no_grad():
        model.user.attention.weight.normal_()
    assert not torch.allclose(user_before, model.user.encode(users))
    version, data = serialize(model, {})
    loaded = load_bytes(data, version).model
    assert loaded.config == config
    torch.testing.assert_close(loaded.user.encode(users), model.user.encode(users))
    torch.testing.assert_close(loaded.item.encode(videos), model.item.encode(videos))


@pytest.mark.parametrize(("field", "value", "match"), [
    ("output_dim", 0, "output_dim"), ("history_len", 51, "history_len"),
    ("user_feature_columns", ("nope",), "unknown user feature"), ("temperature", 0.0, "temperature"),
    ("history_pool", "max", "history_pool")])
def test_tower_config_rejects_nonsense(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TowerConfig(**{field: value})


# --- loss ------------------------------------------------------------------------------------------------


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


def test_duplicate_items_are_not_negatives_in_the_batch_or_among_extra_negatives() -> None:
    user = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    item = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ids = torch.tensor([4, 4, 9])
    masked = in_batch_softmax_loss(user, item, temperature=1.0, item_ids=ids)
    # Rows 0 and 1 (item 4) skip each other's copy: -log(e / (e + 1)). Row 2 (item 9) sees both copies of 4
    # as negatives: -log(e / (e + 2)).
    expected = (2 * -math.log(math.e / (math.e + 1)) - math.log(math.e / (math.e + 2))) / 3
    assert masked.item() == pytest.approx(expected, rel=1e-6)
    assert in_batch_softmax_loss(user, item, temperature=1.0).item() > masked.item()
    # An extra (uniformly drawn) negative that is row 0's own item is masked for row 0 only.
    extra = torch.cat([item, torch.tensor([[1.0, 0.0], [0.0, 0.0]])])
    with_extra = in_batch_softmax_loss(user, extra, temperature=1.0, item_ids=torch.tensor([4, 4, 9, 4, 7]))
    row2 = -math.log(math.e / (math.e + 3 + 1))  # three copies of item 4 (cos 0) and item 7 (cos 0)
    rows01 = -math.log(math.e / (math.e + 1 + 1))  # item 9 (cos 0) and item 7 (cos 0)
    assert with_extra.item() == pytest.approx((2 * rows01 + row2) / 3, rel=1e-6)


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
    assert f.probability(np.array([5]))[0] == 0.0  # never a positive: only a uniform draw can make it a candidate


# --- training rows ----------------------------------------------------------------------------------------


def _ms(hour: int, day: int = 1) -> int:
    return int(datetime(2026, 12, day, hour, tzinfo=UTC).timestamp() * 1000)


def _rows() -> dict[str, list]:
    """Five impressions of user u1 over two days; the columns the towers read (training.watch_outcomes)."""
    n = 5
    rows: dict[str, list] = {c: [None] * n for c in table_columns()}
    rows.update({
        "event_time": [_ms(1), _ms(2), _ms(3), _ms(1, 2), _ms(2, 2)],
        "user_id": ["u1"] * n, "video_id": ["v1", "v2", "v3", "v1", "v4"],
        "author_id": ["a1", "a2", "a3", "a9", "a4"], "sound_id": [None, "s2", None, None, None],
        "hashtags": [["x"], [], ["y"], ["z"], None],
        "label_completed": [True, False, False, True, False], "label_liked": [False, False, True, False, False],
        "label_shared": [False, False, False, False, True],
        "recent_positives": [[], ["v1"], ["v1"], ["v3", "v1"], ["v1", "v3"]],
        "user_engagement__plays_24h": [None, 1.0, 1.0, 2.0, 3.0],
    })
    return rows


def test_positives_are_completed_liked_or_shared_rows_with_their_inputs_as_of_then() -> None:
    data = positives_from_columns(_rows())
    videos = [data.catalogue.video_ids[v] for v in data.video]
    assert videos == ["v1", "v3", "v1", "v4"] and data.rows == 5  # v2 was only shown
    assert data.recent_positives[1] == ["v1"] and data.recent_positives[3] == ["v1", "v3"]
    plays = data.feature_columns.index("plays_24h")
    assert np.isnan(data.user_features[0, plays]) and data.user_features[3, plays] == 3.0
    index = data.catalogue.indices(["v1", "v9"])
    assert index[1] == -1 and data.catalogue.author_ids[index[0]] == "a1"  # content from the first row
    assert data.catalogue.sound_ids[data.catalogue.indices(["v2"])[0]] == "s2"


def test_held_out_days_and_the_exclusions_of_each_query() -> None:
    data = positives_from_columns(_rows())
    assert data.split_days(1) == _ms(0, 2)
    with pytest.raises(ValueError, match="cover 2 day"):
        data.split_days(2)
    exclude = data.exclusions(np.array([2, 3]))
    assert exclude[0, :2].tolist() == data.catalogue.indices(["v3", "v1"]).tolist() and exclude[0, 2] == -1


def test_recall_ranks_each_ranker_and_measures_the_share_of_oracle_lift() -> None:
    targets, exclude = np.array([2, 1]), np.array([[-1], [0]])
    scores = {"model": np.array([[0.0, 0, 1, 0], [1, 0, 0, 0]]), "oracle": np.array([[0.0, 0, 1, 0], [0, 1, 0, 0]])}
    rankers = {name: (lambda rows, s=s: s[rows]) for name, s in scores.items()}
    rankers["popularity"] = popularity_scorer(np.array([9, 5, 1, 0]))
    report = recall_at_k(rankers, targets, exclude, ks=(1, 2))
    # Model: row 0 -> 2 (hit@1); row 1 -> 0 excluded, then ties at 0 -> 1 (hit@1). Popularity: 0, 1, 2, 3.
    assert report.model == {1: 1.0, 2: 1.0} and report.popularity == {1: 0.5, 2: 0.5}
    assert report.ratio[1] == pytest.approx(2.0) and report.lift == {1: 1.0, 2: 1.0}
    assert report.to_dict()["oracle_lift"] == {"1": 1.0, "2": 1.0}
    with pytest.raises(ValueError, match="model and popularity"):
        recall_at_k({"model": rankers["model"]}, targets, exclude)


# --- saving and encoding ------------------------------------------------------------------------------------


def _trained_looking(config: TowerConfig = SMALL) -> TwoTower:
    model = TwoTower(config).eval()
    videos = item_inputs(["v1", "v2"], ["a1", "a2"], ["s1", None], [["cats"], ["dogs", "fyp"]], config)
    for table, name in ((model.item.video, "video"), (model.item.author, "author"), (model.item.hashtag, "hashtags")):
        table.mark_seen(torch.from_numpy(getattr(videos, name)).flatten())
    model.item.remember(videos)
    return model


def test_save_load_round_trip(tmp_path) -> None:
    model = _trained_looking()
    version, data = serialize(model, {"recall": {"10": 0.5}})
    save_local(tmp_path, version, data)
    loaded = latest_local(tmp_path)
    assert loaded.version == version and loaded.name == f"two-tower-{version}" and loaded.info["recall"]
    assert loaded.model.config == SMALL
    videos = item_inputs(["v1", "v2", "v3"], ["a1", "a2", "a3"], [None] * 3, [["cats"], [], []], SMALL)
    torch.testing.assert_close(model.item.encode(videos), loaded.model.item.encode(videos))
    users = user_inputs([["v2", "v1"]], NO_FEATURES, SMALL)
    torch.testing.assert_close(model.user.encode(users), loaded.model.user.encode(users))
    with pytest.raises(ValueError, match="not a fyp-two-tower"):
        load_bytes(torch.save({"x": 1}, tmp_path / "bad.pt") or (tmp_path / "bad.pt").read_bytes(), version)


def test_encoders_with_a_trained_model_read_only_what_training_read() -> None:
    loaded = LoadedModel(_trained_looking(), "v", {})
    items = ItemEncoder(loaded)
    videos = [VideoMeta(video_id="v1", author_id="a1", hashtags=("cats",), caption="a"),
              VideoMeta(video_id="v2", author_id="a2", sound_id="s1", hashtags=("dogs", "fyp"), duration_ms=9000)]
    vectors = items.encode(videos)
    assert vectors.shape == (2, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    other_text = [VideoMeta(video_id="v1", author_id="a1", hashtags=("cats",), caption="something else",
                            ocr_text="SALE", duration_ms=60_000)]
    np.testing.assert_allclose(items.encode(other_text)[0], vectors[0], atol=1e-6)  # caption, OCR, media: no inputs
    np.testing.assert_array_equal(items.encode_content(videos, None), vectors)
    users = UserEncoder(loaded).encode([UserHistory(video_ids=("v2", "v1")), UserHistory()],
                                       [UserFeatures(values={"plays_24h": 2.0}), None])
    assert users.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="feature rows"):
        UserEncoder(loaded).encode([UserHistory()], [None, None])


def test_positives_keep_the_catalogue_a_model_is_trained_on() -> None:
    data = positives_from_columns(_rows())
    assert isinstance(data, Positives) and isinstance(data.catalogue, Catalogue)
    assert len(data.catalogue) == 4 and data.catalogue.first_ms.tolist() == [_ms(1), _ms(2), _ms(3), _ms(2, 2)]


# --- the item tower's video features (off by default) ------------------------------------------------------


def test_video_features_are_read_as_of_each_row_and_never_from_later_rows() -> None:
    rows = _rows()
    rows["video_engagement__plays_24h"] = [4.0, 1.0, None, 9.0, 2.0]
    data = positives_from_columns(rows, video_feature_columns=("plays_24h",))
    features = data.video_features
    assert features is not None and features.columns == ("plays_24h",) and len(features.video) == 5  # every row
    v1 = data.catalogue.indices(["v1"])[0]
    at = features.at(np.array([v1, v1, v1, v1]), np.array([_ms(0), _ms(1), _ms(23), _ms(1, 2)]))
    assert np.isnan(at[0, 0]) and at[1:, 0].tolist() == [4.0, 4.0, 9.0]  # before its first row: nothing
    assert positives_from_columns(_rows()).video_features is None  # not asked, not read
    assert "video_engagement__plays_24h" in table_columns(video_feature_columns=("plays_24h",))


def test_item_tower_reads_video_features_only_when_configured() -> None:
    config = replace(SMALL, video_feature_columns=("plays_24h", "completion_rate_24h"))
    raw = np.array([[99.0, 3.0], [np.nan, np.nan]])
    x = item_inputs(["v1", "v2"], ["a1", "a2"], [None, None], [[], []], config, raw)
    np.testing.assert_allclose(x.features, [[math.log1p(99.0), 1.0, 0.0], [0.0, 0.0, 1.0]], rtol=1e-6)
    model = TwoTower(config).eval()
    vectors = model.item.encode(x)
    assert vectors.shape == (2, 16)
    same_ids = model.item.encode(item_inputs(["v1"], ["a1"], [None], [[]], config, raw[1:]))[0]
    assert not torch.allclose(vectors[0], same_ids)  # the counts move the vector
    with pytest.raises(ValueError, match="video_features is required"):
        item_inputs(["v1"], ["a1"], [None], [[]], config)
    with pytest.raises(ValueError, match="reads no video feature columns"):
        item_inputs(["v1"], ["a1"], [None], [[]], SMALL, raw[:1])
    assert item_inputs(["v1"], ["a1"], [None], [[]], SMALL).features.shape == (1, 0)
    with pytest.raises(ValueError, match="unknown video feature columns"):
        TowerConfig(video_feature_columns=("nope",))
    # Serving has no path that reads a video's counts yet: an encoder of such a model refuses, rather than
    # embedding with inputs that differ from training's.
    with pytest.raises(ValueError, match="video_features is required"):
        ItemEncoder(LoadedModel(model, "v", {})).encode([VideoMeta(video_id="v1", author_id="a1")])
