"""The generator's behaviour as probabilities: what `TrafficModel` draws from, and what an oracle ranks by.

One view of video v by user u: v is picked by `view_probability` (interest topics, global Zipf popularity or
the newest uploads), then the viewer skips or watches, completes, loops and engages with the probabilities
below, which depend on the video's latent quality, its length and whether its topic is one of the viewer's
interests (`match`). `TrafficModel.next_block` draws with these functions; `positive_probability` integrates
them into the chance that a view ends in a completion, a like or a share (the positives of the two-tower
model, fyp.embeddings), so a ranker that knows the world's truth needs no second copy of the formulas.
"""

from __future__ import annotations

import math

import numpy as np

from fyp.traffic.catalog import Catalog, zipf_cdf
from fyp.traffic.config import TrafficConfig

__all__ = [
    "BETA_W",
    "BETA_X",
    "COMPLETION_FRACTION",
    "FOLLOW_OFFSET",
    "LOOP_GEOMETRIC_P",
    "PARTIAL_BETA",
    "complete_logit",
    "engagement_logit",
    "follow_logit",
    "like_logit",
    "loop_logit",
    "partial_fraction",
    "positive_probability",
    "share_logit",
    "skip_probability",
    "view_probability",
]

COMPLETION_FRACTION = 0.95  # features/engagement/common.py: a watch to 95 % is a completion
# Taste effect of a video in (vs out of) the viewer's interests: on the skip probability, the completion and
# loop log-odds, and the engagement log-odds. In an interest-driven feed what a viewer finishes, likes and
# shares is mostly their own taste: a matching view completes ~2.3x and is liked ~7x as often as another
# (tests/unit/fyp/traffic/test_traffic.py). The intercepts (_*_BASE) are re-centred so that the overall rates
# stay those of the taste-free model (skip 0.43, completion 0.36, likes 0.047 per view; docs/EVENTS.md).
_MATCH_SKIP, _MATCH_COMPLETE, _MATCH_ENGAGE = 0.2, 1.2, 1.5
_SKIP_BASE, _COMPLETE_BASE, _LOOP_BASE, _ENGAGE_BASE = 0.571, -0.511, -2.16, -5.43
_MEAN_QUALITY = 0.29  # beta(2, 5)'s mean is 0.286: the coefficients are centred on it
_LIKE_OFFSET, _SHARE_OFFSET = 1.0, 3.0  # engagement log-odds minus these: the like and share log-odds
FOLLOW_OFFSET = 3.4  # and the follow log-odds (fyp/traffic/model.py draws a follow with sigmoid(follow_logit(z)))
LOOP_GEOMETRIC_P = 0.55  # a looping watch loops geometric(0.55) times, at most fyp/traffic/model.py MAX_LOOPS
PARTIAL_BETA = (1.3, 2.2)  # a partial watch's fraction is 0.02 + 0.97 * beta(1.3, 2.2)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _log_len(duration_ms: np.ndarray) -> np.ndarray:
    return np.log(np.asarray(duration_ms, dtype=np.float64) / 20_000.0)  # > 0 for videos longer than 20 s


def skip_probability(quality: np.ndarray, duration_ms: np.ndarray, match: np.ndarray) -> np.ndarray:
    """Probability that a view is a skip (the viewer scrolls past): lower for good, short, matching videos."""
    p = _SKIP_BASE - 0.9 * (quality - _MEAN_QUALITY) + 0.10 * _log_len(duration_ms) - _MATCH_SKIP * match
    return np.clip(p, 0.05, 0.90)


def complete_logit(quality: np.ndarray, duration_ms: np.ndarray, match: np.ndarray) -> np.ndarray:
    """Log-odds that a watch (not a skip) is completed."""
    return _COMPLETE_BASE + 4.0 * (quality - _MEAN_QUALITY) - 1.1 * _log_len(duration_ms) + _MATCH_COMPLETE * match


def loop_logit(quality: np.ndarray, duration_ms: np.ndarray, match: np.ndarray) -> np.ndarray:
    """Log-odds that a completed watch loops at least once."""
    return _LOOP_BASE + 3.0 * (quality - _MEAN_QUALITY) - 0.8 * _log_len(duration_ms) + _MATCH_COMPLETE * match


def partial_fraction(uniform_beta: np.ndarray) -> np.ndarray:
    """The watched fraction of an incomplete watch, from beta(1.3, 2.2) draws."""
    return 0.02 + 0.97 * uniform_beta


def engagement_logit(fraction: np.ndarray, loops: np.ndarray, quality: np.ndarray, match: np.ndarray) -> np.ndarray:
    """Engagement propensity of a watch: grows with the fraction watched, loops, quality and taste."""
    return _ENGAGE_BASE + 2.5 * fraction + 0.4 * loops + 3.0 * (quality - _MEAN_QUALITY) + _MATCH_ENGAGE * match


def like_logit(z: np.ndarray) -> np.ndarray:
    return z - _LIKE_OFFSET


def share_logit(z: np.ndarray) -> np.ndarray:
    return z - _SHARE_OFFSET


def follow_logit(z: np.ndarray) -> np.ndarray:
    return z - FOLLOW_OFFSET


def _beta_grid(points: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Midpoints and weights of beta(1.3, 2.2) on a uniform grid (weights sum to 1)."""
    a, b = PARTIAL_BETA
    x = (np.arange(points) + 0.5) / points
    log_pdf = (a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    w = np.exp(log_pdf)
    return x, w / w.sum()


# The grid a partial watch's fraction is integrated over (here and in fyp/ranking/ceiling.py): points, weights.
BETA_X, BETA_W = _beta_grid()


def positive_probability(quality: np.ndarray, duration_ms: np.ndarray, match: np.ndarray) -> np.ndarray:
    """P(a view ends in a completion, a like or a share), element-wise over videos and match flags.

    A completed watch is a positive by itself; an incomplete one is a positive when its fraction reaches
    COMPLETION_FRACTION or it draws a like or a share (independent draws), integrated over the fraction's beta
    distribution. A skip never is (no engagement follows one).

    >>> p = positive_probability(np.array([0.3, 0.3]), np.array([15_000, 15_000]), np.array([0, 1]))
    >>> bool(0 < p[0] < p[1] < 1)
    True
    """
    quality, duration_ms, match = np.broadcast_arrays(np.asarray(quality, dtype=np.float64),
                                                      np.asarray(duration_ms, dtype=np.float64),
                                                      np.asarray(match, dtype=np.float64))
    watch = 1.0 - skip_probability(quality, duration_ms, match)
    complete = _sigmoid(complete_logit(quality, duration_ms, match))
    fraction = partial_fraction(BETA_X)  # (points,)
    z = engagement_logit(fraction, 0.0, quality[..., None], match[..., None])
    no_engagement = (1.0 - _sigmoid(like_logit(z))) * (1.0 - _sigmoid(share_logit(z)))
    partial = np.where(fraction >= COMPLETION_FRACTION, 1.0, 1.0 - no_engagement) @ BETA_W
    return watch * (complete + (1.0 - complete) * partial)


def view_probability(catalog: Catalog, config: TrafficConfig, users: np.ndarray, video_count: int) -> np.ndarray:
    """(len(users), video_count) P(a view of each user shows each video), with the catalog at `video_count`.

    The three ways `TrafficModel` picks a video: one of the user's interest topics (uniform over its
    INTERESTS_PER_USER draws) then Zipf popularity within it; global Zipf over the initial catalog; or one of
    the `fresh_window` newest videos, uniformly.
    """
    users = np.asarray(users, dtype=np.int64)
    n_initial = config.videos
    weight = np.diff(zipf_cdf(n_initial, config.zipf_exponent), prepend=0.0)  # P(video) under global Zipf
    topic = catalog.topic[:n_initial]
    mass = np.bincount(topic, weights=weight, minlength=len(catalog.topic_start) - 1)
    interests = catalog.interests[users]  # (n, I)
    share = np.zeros((len(users), n_initial))
    for column in range(interests.shape[1]):
        chosen = interests[:, column]
        share += (topic[None, :] == chosen[:, None]) / mass[chosen][:, None]
    share *= weight[None, :] / interests.shape[1]
    out = np.zeros((len(users), video_count))
    out[:, :n_initial] = config.interest_traffic_fraction * share + (1 - config.interest_traffic_fraction) * weight
    out *= 1.0 - config.fresh_traffic_fraction
    window = min(config.fresh_window, video_count)
    out[:, video_count - window:] += config.fresh_traffic_fraction / window
    return out
