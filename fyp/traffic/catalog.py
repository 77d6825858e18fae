"""The synthetic world: users with locales and interests, videos with authors, topics, sounds, durations and
hashtags.

Taste: every author belongs to one topic (a community named after a topical hashtag: dance, food, gaming...),
so a video's topic is its author's, and its first hashtag names it. Every user gets `INTERESTS_PER_USER`
topics at creation, drawn in proportion to the topics' share of popularity (so that interest-driven views keep
the global Zipf shape of video popularity on average).

Video attributes are drawn in chunks from a generator seeded by (seed, chunk number), so the catalog can
grow as uploads arrive and video N is the same video whatever order it was first needed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fyp.traffic.config import TrafficConfig
from fyp.traffic.vocab import HASHTAGS, LOCALES

__all__ = [
    "INTERESTS_PER_USER",
    "MAX_HASHTAGS",
    "TOPIC_TAGS",
    "Catalog",
    "Video",
    "cumulative",
    "draw",
    "zipf_cdf",
]

MAX_HASHTAGS = 5
HASHTAG_VOCABULARY = 1_000
_CHUNK = 4_096
_SOUND_SHARE = 0.7  # share of videos that use a sound
# Topics are the topical hashtags (HASHTAGS minus the generic fyp/foryou/viral/trending head), by index.
TOPIC_TAGS = tuple(range(4, len(HASHTAGS)))
INTERESTS_PER_USER = 3  # drawn with replacement: a user may be deep into one or two topics


def zipf_cdf(n: int, exponent: float) -> np.ndarray:
    """Cumulative probabilities of ranks 0..n-1 with P(rank k) proportional to (k + 1) ** -exponent."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def cumulative(weights: tuple[float, ...]) -> np.ndarray:
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    return cdf / cdf[-1]


def draw(cdf: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Indices drawn from a cumulative distribution, one per uniform number in [0, 1)."""
    return np.minimum(np.searchsorted(cdf, uniform, side="right"), len(cdf) - 1)


@dataclass(frozen=True, kw_only=True)
class Video:
    """One video as the events describe it."""

    video_id: str
    author_id: str
    sound_id: str | None
    hashtags: tuple[str, ...]
    duration_ms: int


class Catalog:
    """Users and videos by index; arrays are numpy so the model can look them up in bulk."""

    def __init__(self, config: TrafficConfig, seed: int) -> None:
        self._seed = seed
        self._author_cdf = zipf_cdf(config.author_count, 1.1)
        self._sound_cdf = zipf_cdf(config.sound_count, 1.3)  # steeper: a few sounds trend
        self._tag_cdf = zipf_cdf(HASHTAG_VOCABULARY, 1.0)
        self.hashtags = HASHTAGS + tuple(f"tag{i}" for i in range(len(HASHTAGS), HASHTAG_VOCABULARY))
        users = np.random.default_rng([seed, 1])
        self.user_locale = draw(cumulative(tuple(w for _, _, w in LOCALES)), users.random(config.users))
        self.author_topic = np.random.default_rng([seed, 4]).integers(len(TOPIC_TAGS), size=config.author_count)
        self.author = np.empty(0, dtype=np.int64)
        self.sound = np.empty(0, dtype=np.int64)  # -1: no sound
        self.duration_ms = np.empty(0, dtype=np.int64)
        self.quality = np.empty(0, dtype=np.float64)  # latent appeal in (0, 1), mean ~0.29
        self.tags = np.empty((0, MAX_HASHTAGS), dtype=np.int64)  # -1 pads
        self.ensure_videos(config.videos)
        self._topic_index(config, seed)

    def _topic_index(self, config: TrafficConfig, seed: int) -> None:
        """The initial catalog grouped by topic with each topic's Zipf popularity, and the users' interests.

        `topic_order` lists video ids topic by topic (ids ascending, so popular first); `topic_cdf` is the
        cumulative Zipf weight along that order, and topic t spans [topic_start[t], topic_start[t + 1]).
        """
        weights = np.diff(zipf_cdf(config.videos, config.zipf_exponent), prepend=0.0)
        topic = self.topic[: config.videos]
        self.topic_order = np.argsort(topic, kind="stable")
        self.topic_cdf = np.cumsum(weights[self.topic_order])
        self.topic_start = np.searchsorted(topic[self.topic_order], np.arange(len(TOPIC_TAGS) + 1))
        mass = np.bincount(topic, weights=weights, minlength=len(TOPIC_TAGS))
        rng = np.random.default_rng([seed, 5])
        self.interests = draw(cumulative(tuple(mass)), rng.random((config.users, INTERESTS_PER_USER)))

    @property
    def topic(self) -> np.ndarray:
        """Topic of every video in the catalog (its author's)."""
        return self.author_topic[self.author]

    @property
    def capacity(self) -> int:
        return len(self.author)

    def ensure_videos(self, count: int) -> None:
        """Make attributes of videos 0..count-1 available."""
        chunks = []
        for chunk in range(self.capacity // _CHUNK, -(-count // _CHUNK)):
            chunks.append(self._video_chunk(chunk))
        if chunks:
            self.author = np.concatenate([self.author, *(c[0] for c in chunks)])
            self.sound = np.concatenate([self.sound, *(c[1] for c in chunks)])
            self.duration_ms = np.concatenate([self.duration_ms, *(c[2] for c in chunks)])
            self.quality = np.concatenate([self.quality, *(c[3] for c in chunks)])
            self.tags = np.concatenate([self.tags, *(c[4] for c in chunks)])

    def _video_chunk(self, chunk: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng([self._seed, 2, chunk])
        author = draw(self._author_cdf, rng.random(_CHUNK))
        sound = np.where(rng.random(_CHUNK) < _SOUND_SHARE, draw(self._sound_cdf, rng.random(_CHUNK)), -1)
        # Lognormal around 22 s, clipped to the app's 5 s .. 3 min.
        duration = np.clip(rng.lognormal(np.log(22_000), 0.75, _CHUNK), 5_000, 180_000).astype(np.int64)
        quality = rng.beta(2.0, 5.0, _CHUNK)
        tags = draw(self._tag_cdf, rng.random((_CHUNK, MAX_HASHTAGS)))
        count = np.clip(rng.poisson(2.2, _CHUNK), 0, MAX_HASHTAGS)
        tags[np.arange(MAX_HASHTAGS) >= count[:, None]] = -1
        tags[:, 0] = np.asarray(TOPIC_TAGS)[self.author_topic[author]]  # the topic's own hashtag first
        return author, sound, duration, quality, tags

    def video(self, index: int) -> Video:
        """Video `index` (must be below `capacity`)."""
        sound = int(self.sound[index])
        tags = dict.fromkeys(
            self.hashtags[t] for t in self.tags[index].tolist() if t >= 0
        )  # dedupe, keep order
        return Video(
            video_id=f"v{index}",
            author_id=f"a{self.author[index]}",
            sound_id=f"snd{sound}" if sound >= 0 else None,
            hashtags=tuple(tags),
            duration_ms=int(self.duration_ms[index]),
        )

    def locale(self, user: int) -> tuple[str, str]:
        """(region, language) of a user."""
        region, language, _ = LOCALES[self.user_locale[user]]
        return region, language
