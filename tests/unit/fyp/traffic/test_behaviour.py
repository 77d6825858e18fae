"""The generator's probabilities (fyp.traffic.behaviour) against what `TrafficModel` actually draws: the oracle
ranks by them, so they must be the truth of the traffic, not a second model of it."""

from __future__ import annotations

import numpy as np

from fyp.traffic import TrafficConfig
from fyp.traffic.behaviour import positive_probability, view_probability
from fyp.traffic.model import LIKE, SHARE, WATCH, TrafficModel

NOW = 1_700_000_000_000
CONFIG = TrafficConfig(users=400, videos=2_000, new_video_fraction=0.0)


def _views(model: TrafficModel, n_blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per view: user, video, and whether it ended in a completion, a like or a share."""
    users, videos, positive = [], [], []
    for _ in range(n_blocks):
        block = model.next_block(4_000, NOW)
        v = np.asarray(block.video)
        kind, view = np.asarray(block.event_kind), np.asarray(block.event_view)
        watched = np.zeros(len(v), dtype=bool)
        watched[view[kind == WATCH]] = True
        done = watched & (np.asarray(block.watch_ms) >= 0.95 * model.catalog.duration_ms[v])
        done[view[(kind == LIKE) | (kind == SHARE)]] = True
        users.append(np.asarray(block.user))
        videos.append(v)
        positive.append(done)
    return np.concatenate(users), np.concatenate(videos), np.concatenate(positive)


def test_positive_probability_is_the_rate_the_model_draws() -> None:
    model = TrafficModel(CONFIG, 3)
    users, videos, positive = _views(model, 25)
    catalog = model.catalog
    match = (catalog.interests[users] == catalog.topic[videos][:, None]).any(axis=1)
    expected = positive_probability(catalog.quality[videos], catalog.duration_ms[videos], match)
    for chosen in (match, ~match):
        observed, predicted = positive[chosen].mean(), expected[chosen].mean()
        stderr = np.sqrt(predicted * (1 - predicted) / chosen.sum())
        assert abs(observed - predicted) < 4 * stderr + 0.005, (observed, predicted)
    # Per quality band too: the probability follows each video, not just the average.
    band = np.digitize(catalog.quality[videos], [0.2, 0.35])
    for b in range(3):
        assert abs(positive[band == b].mean() - expected[band == b].mean()) < 0.02


def test_view_probability_is_the_share_of_views_each_video_gets() -> None:
    model = TrafficModel(CONFIG, 5)
    users, videos, _ = _views(model, 25)
    p = view_probability(model.catalog, CONFIG, np.arange(CONFIG.users), model.video_count)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)
    # Expected views of each video given who viewed: each viewer's row, times their views.
    views_of = np.bincount(users, minlength=CONFIG.users).astype(np.float64)
    expected = views_of @ p
    observed = np.bincount(videos, minlength=model.video_count)
    head = np.argsort(-expected)[:200]
    assert np.corrcoef(expected[head], observed[head])[0, 1] > 0.97
    # A user's interest topics get the share of their views the model gives them.
    catalog = model.catalog
    in_interest = (catalog.interests[users] == catalog.topic[videos][:, None]).any(axis=1)
    mine = (catalog.interests[:, :, None] == catalog.topic[None, None, : model.video_count]).any(axis=1)
    predicted = (views_of * (p * mine).sum(axis=1)).sum() / views_of.sum()
    assert abs(in_interest.mean() - predicted) < 0.01
