"""The oracle: a ranker that knows the synthetic world's truth, the ceiling the two-tower model is measured to.

Traffic from `fyp.traffic` is drawn from a seeded model, so for a user u and a video v the generator knows
P(v is shown to u) (`fyp.traffic.behaviour.view_probability`: u's interest topics, Zipf popularity, the
newest uploads) and P(the view ends in a completion, a like or a share) (`positive_probability`: v's latent
quality and length, and whether v's topic is one of u's interests). The oracle ranks the catalogue by their
product, P(v is u's next positive): no model trained on the events can know more. It rebuilds the world from
the same `TrafficConfig` and seed the traffic was produced with (`fyp produce --users --videos --seed`).

Ids are the generator's: user `u<index>`, video `v<index>`; any other id (an upload) scores -inf.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fyp.traffic.behaviour import positive_probability, view_probability
from fyp.traffic.catalog import Catalog
from fyp.traffic.config import TrafficConfig

__all__ = ["Oracle", "generator_index"]


def generator_index(ids: Sequence[str], prefix: str) -> np.ndarray:
    """The generator's index of each id (`v17` -> 17), -1 for an id that is not the generator's.

    >>> generator_index(["v17", "u3", "v", "vx1", "v05"], "v").tolist()
    [17, -1, -1, -1, -1]
    """
    out = np.full(len(ids), -1, dtype=np.int64)
    for i, value in enumerate(ids):
        digits = value[len(prefix):] if value.startswith(prefix) else ""
        if digits.isdigit() and str(int(digits)) == digits:
            out[i] = int(digits)
    return out


class Oracle:
    """Scores of a catalogue for the generator's users, from the world of `config` and `seed`.

    catalogue: video ids, in the order the scores' columns take. first_ms: (len(catalogue),) when each video
    was first shown; it dates the catalogue's growth, which `fresh_traffic_fraction` of views follows.
    """

    def __init__(self, config: TrafficConfig, seed: int, catalogue: Sequence[str], first_ms: np.ndarray) -> None:
        self.config = config
        self.world = Catalog(config, seed)
        self.videos = generator_index(catalogue, "v")
        known = self.videos >= 0
        self.size = max(int(self.videos.max()) + 1 if known.any() else 0, config.videos)
        self.world.ensure_videos(self.size)
        by_time = np.argsort(np.where(known, first_ms, np.iinfo(np.int64).max), kind="stable")
        self._times = np.asarray(first_ms)[by_time][known[by_time]]
        self._count = np.maximum.accumulate(self.videos[by_time][known[by_time]] + 1) if known.any() else self._times
        quality, duration = self.world.quality[: self.size], self.world.duration_ms[: self.size]
        self._positive = np.stack([positive_probability(quality, duration, np.zeros(self.size)),
                                   positive_probability(quality, duration, np.ones(self.size))])

    def catalogue_size_at(self, time_ms: np.ndarray) -> np.ndarray:
        """The generator's catalogue size at each time: one past the newest video shown by then."""
        at = np.searchsorted(self._times, np.asarray(time_ms), side="right") - 1
        return np.where(at >= 0, self._count[np.maximum(at, 0)], self.config.videos).clip(min=self.config.videos)

    def scores(self, user_ids: Sequence[str], time_ms: np.ndarray) -> np.ndarray:
        """(len(user_ids), catalogue) P(the video is the user's next positive) at each time; -inf for a video
        or user the generator does not know."""
        users = generator_index(user_ids, "u")
        out = np.full((len(users), len(self.videos)), -np.inf)
        known_video = self.videos >= 0
        columns = self.videos[known_video]
        topic = self.world.topic[: self.size]
        sizes = self.catalogue_size_at(time_ms)
        for size in np.unique(sizes):
            rows = np.flatnonzero((sizes == size) & (users >= 0) & (users < self.config.users))
            if not len(rows):
                continue
            view = np.zeros((len(rows), self.size))  # videos not uploaded yet at that time: 0
            view[:, :size] = view_probability(self.world, self.config, users[rows], int(size))
            match = (self.world.interests[users[rows]][:, :, None] == topic[None, None, :]).any(axis=1)
            positive = np.where(match, self._positive[1], self._positive[0])
            out[np.ix_(rows, np.flatnonzero(known_video))] = (view * positive)[:, columns]
        return out
