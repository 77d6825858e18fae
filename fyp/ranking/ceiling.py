"""The ceiling of each ranker head: the generator's true probability of the head's label for one impression.

Traffic from `fyp.traffic` is drawn from known probabilities (`fyp.traffic.behaviour`: the video's latent
quality and length, and whether its author's topic is one of the viewer's interests). Ranking test rows by the
true probability gives the best AUC any model of the events can reach on them; a ranker's distance to it is
its headroom. The labels are those of training/watch_outcomes.py: a watch to 95 % (completed), a like, a
share, a follow (FOLLOW, not UNFOLLOW) within the view, and a skip with a dwell under SKIP_DWELL_MS.

Constant factors (the follow action's FOLLOW share, the dwell's chance to stay under SKIP_DWELL_MS for a video
longer than it) scale every row alike, so they do not change an AUC and are left out.

>>> p = head_probabilities(np.array([0.3, 0.3]), np.array([15_000, 15_000]), np.array([0, 1]))
>>> bool((p["followed"][1] > p["followed"][0]) and (p["skipped"][1] < p["skipped"][0]))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fyp.embeddings.oracle import generator_index
from fyp.traffic.behaviour import (
    BETA_W,
    BETA_X,
    COMPLETION_FRACTION,
    LOOP_GEOMETRIC_P,
    complete_logit,
    engagement_logit,
    follow_logit,
    like_logit,
    loop_logit,
    partial_fraction,
    share_logit,
    skip_probability,
)
from fyp.traffic.catalog import Catalog
from fyp.traffic.config import TrafficConfig
from fyp.traffic.model import MAX_LOOPS

__all__ = ["head_probabilities", "world_probabilities"]



def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _loop_counts() -> tuple[np.ndarray, np.ndarray]:
    """Loop counts 1..MAX_LOOPS of a looping watch and their probabilities (geometric, capped)."""
    k = np.arange(1, MAX_LOOPS + 1)
    p = LOOP_GEOMETRIC_P * (1 - LOOP_GEOMETRIC_P) ** (k - 1)
    p[-1] = (1 - LOOP_GEOMETRIC_P) ** (MAX_LOOPS - 1)  # min(geometric, MAX_LOOPS): the tail lands on the cap
    return k.astype(np.float64), p


def head_probabilities(quality: np.ndarray, duration_ms: np.ndarray, match: np.ndarray) -> dict[str, np.ndarray]:
    """P(label) per head for views of videos of `quality` and `duration_ms` by viewers whose interests
    (`match` 1) or not (0) include the video's topic, up to a constant factor per head (see the module)."""
    quality, duration_ms, match = np.broadcast_arrays(np.asarray(quality, dtype=np.float64),
                                                      np.asarray(duration_ms, dtype=np.float64),
                                                      np.asarray(match, dtype=np.float64))
    skip = skip_probability(quality, duration_ms, match)
    complete = _sigmoid(complete_logit(quality, duration_ms, match))
    loops = _sigmoid(loop_logit(quality, duration_ms, match))
    fraction = partial_fraction(BETA_X)  # an incomplete watch's fraction, on beta(1.3, 2.2)'s grid
    counts, count_p = _loop_counts()
    q, m = quality[..., None], match[..., None]
    z_partial = engagement_logit(fraction, 0.0, q, m)  # (rows, grid)
    z_done = engagement_logit(1.0, np.concatenate([[0.0], counts]), q, m)  # (rows, 1 + MAX_LOOPS)
    done_w = np.concatenate([(1 - loops)[..., None], loops[..., None] * count_p], axis=-1)
    out = {"completed": (1 - skip) * (complete + (1 - complete) * (BETA_W @ (fraction >= COMPLETION_FRACTION))),
           "skipped": skip}
    for head, logit in (("liked", like_logit), ("shared", share_logit),
                        ("followed", follow_logit)):
        partial = _sigmoid(logit(z_partial)) @ BETA_W
        done = (_sigmoid(logit(z_done)) * done_w).sum(axis=-1)
        out[head] = (1 - skip) * (complete * done + (1 - complete) * partial)
    return out


def world_probabilities(config: TrafficConfig, seed: int, user_ids: Sequence[str],
                        video_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """`head_probabilities` of each (user, video) row, in the world generated from `config` and `seed`;
    `ValueError` for an id that is not the generator's (`u<index>`, `v<index>`)."""
    users, videos = generator_index(user_ids, "u"), generator_index(video_ids, "v")
    if (users < 0).any() or (videos < 0).any() or (users >= config.users).any():
        raise ValueError("rows with ids the generator did not make: the ceiling needs its world's rows")
    world = Catalog(config, seed)
    world.ensure_videos(int(videos.max()) + 1)
    match = (world.interests[users] == world.author_topic[world.author[videos]][:, None]).any(axis=1)
    return head_probabilities(world.quality[videos], world.duration_ms[videos], match)
