"""User-embedding worker: refreshes `fyp:user_embedding:v1:{user_id}` for the users who were active lately.

Every `every` seconds: scan the recent-seen sets the features job writes (`fyp:recent_seen:v1:{user}`), pick
the users whose newest entry is newer than their last refresh (and within `active_within`), and for each batch
of them read their history (the recent-seen set, oldest first), their real-time features
(`FeatureClient.get("user", id)`) and the metadata of the videos in their history (`fyp:video:v1:*`, for the
content-projection fallback), encode with the towers' `UserEncoder` (docs/EMBEDDINGS.md) and `SET` the 64
float32 little-endian under the key the index service reads, with a TTL (default 24 h): a user who stops
coming back loses the embedding, and ANN is skipped for them.

Why a worker and not a Flink job: the inputs are the features job's serving state in Redis (the same reads
serving makes), not a per-event computation, and the encoder (torch) is batched best over many users at once.
A Flink job would have to rebuild that state from the engagement stream, or read Redis from an operator anyway.
The scan is O(users with a recent-seen set) per pass; beyond a few million users, keep a sorted set of active
users (the features job could write it) and read only its newest members.

Run: `fyp worker user-embeddings [--every 10] [--once]`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from connectors.redis_video_store import video_key
from features.serving_sets import RECENT_SEEN
from workers.runtime import run_periodic

__all__ = ["PassReport", "RefreshConfig", "UserEmbeddingRefresher", "due_users", "run"]

log = logging.getLogger("fyp.user_embeddings")


@dataclass(frozen=True, kw_only=True)
class RefreshConfig:
    """every: seconds between passes (default 10). ttl: the embedding's lifetime (default 24 h).
    active_within: only users seen this recently (default 24 h). history_len: newest seen videos read (50).
    batch: users per encoder call (256). model_source: `fyp.embeddings.load_encoders`' source ("local")."""

    every: timedelta = timedelta(seconds=10)
    ttl: timedelta = timedelta(hours=24)
    active_within: timedelta = timedelta(hours=24)
    history_len: int = 50
    batch: int = 256
    model_source: str = "local"

    def __post_init__(self) -> None:
        if self.ttl <= timedelta(0) or self.every <= timedelta(0) or self.active_within <= timedelta(0):
            raise ValueError("every, ttl and active_within must be positive")
        if self.history_len < 1 or self.batch < 1:
            raise ValueError("history_len and batch must be >= 1")


@dataclass
class PassReport:
    scanned: int = 0
    due: int = 0
    written: int = 0
    no_embedding: int = 0
    seconds: float = 0.0
    model: str = ""
    errors: list[str] = field(default_factory=list)


def due_users(newest: dict[str, float], refreshed: dict[str, float], *, now_ms: float,
              active_within_ms: float) -> list[str]:
    """Users whose newest seen time is newer than their last refresh and within the active window.

    >>> due_users({"a": 100, "b": 50, "c": 10}, {"b": 50}, now_ms=120, active_within_ms=100)
    ['a']
    """
    return sorted(u for u, t in newest.items()
                  if t > refreshed.get(u, float("-inf")) and now_ms - t <= active_within_ms)


class UserEmbeddingRefresher:
    """One pass at a time over `client` (redis.Redis, bytes) with `features` (FeatureClient) and `users`
    (UserEncoder); `refreshed` remembers each user's newest seen time at the last write."""

    def __init__(self, client: Any, features: Any, users: Any, config: RefreshConfig = RefreshConfig()) -> None:
        self.redis = client
        self.features = features
        self.users = users
        self.config = config
        self.refreshed: dict[str, float] = {}

    def _scan_newest(self) -> Iterator[dict[str, float]]:
        prefix = RECENT_SEEN.key_prefix
        keys: list[bytes] = []
        for key in self.redis.scan_iter(match=f"{prefix}*", count=1000):
            keys.append(key)
            if len(keys) >= 1000:
                yield self._newest(keys, prefix)
                keys = []
        if keys:
            yield self._newest(keys, prefix)

    def _newest(self, keys: list[bytes], prefix: str) -> dict[str, float]:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.zrange(key, -1, -1, withscores=True)
        out = {}
        for key, top in zip(keys, pipe.execute(), strict=True):
            if top:
                out[_text(key)[len(prefix):]] = float(top[0][1])
        return out

    def run_pass(self, *, now_ms: float | None = None, only: Sequence[str] | None = None) -> PassReport:
        """Refresh every due user (or exactly `only`); returns counts."""
        from fyp.index.users import USER_EMBEDDING_KEY

        started = time.monotonic()
        report = PassReport(model=self.users.name)
        now = now_ms if now_ms is not None else time.time() * 1000
        newest: dict[str, float] = {}
        if only is None:
            for chunk in self._scan_newest():
                newest.update(chunk)
            due = due_users(newest, self.refreshed, now_ms=now,
                            active_within_ms=self.config.active_within.total_seconds() * 1000)
        else:
            due = list(only)
        report.scanned, report.due = len(newest), len(due)
        ttl_s = int(self.config.ttl.total_seconds())
        for start in range(0, len(due), self.config.batch):
            batch = due[start:start + self.config.batch]
            vectors, latest = self._encode(batch)
            pipe = self.redis.pipeline(transaction=False)
            for user, vector in zip(batch, vectors, strict=True):
                if not vector.any():  # the fallback knows nothing about this user's videos
                    report.no_embedding += 1
                    continue
                pipe.set(USER_EMBEDDING_KEY.format(user_id=user), vector.astype("<f4").tobytes(), ex=ttl_s)
                report.written += 1
            pipe.execute()
            for user in batch:
                self.refreshed[user] = newest.get(user, latest.get(user, now))
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def _encode(self, users: list[str]):
        from fyp.embeddings import UserFeatures, UserHistory, VideoMeta

        pipe = self.redis.pipeline(transaction=False)
        for user in users:
            pipe.zrange(RECENT_SEEN.key_prefix + user, -self.config.history_len, -1, withscores=True)
        seen = [[(_text(v), s) for v, s in pairs] for pairs in pipe.execute()]
        video_ids = sorted({v for pairs in seen for v, _ in pairs})
        pipe = self.redis.pipeline(transaction=False)
        for video_id in video_ids:
            pipe.hgetall(video_key(video_id))
        metas = {}
        for video_id, raw in zip(video_ids, pipe.execute(), strict=True):
            if raw:
                fields = {_text(k): _text(x) for k, x in raw.items()}
                metas[video_id] = VideoMeta.from_video_hash(fields, ocr_text=fields.get("ocr_text", ""))
        histories = [UserHistory(video_ids=tuple(v for v, _ in pairs),
                                 videos=tuple(metas[v] for v, _ in pairs if v in metas)) for pairs in seen]
        features = [UserFeatures.from_entity(self.features.get("user", user)) for user in users]
        latest = {user: pairs[-1][1] for user, pairs in zip(users, seen, strict=True) if pairs}
        return self.users.encode(histories, features), latest


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def run(config: RefreshConfig = RefreshConfig(), *, once: bool = False,
        stop: threading.Event | None = None) -> None:  # pragma: no cover - needs Redis and the encoders
    """Pass after pass until SIGTERM/SIGINT or `stop` (or one pass with `once`), with the worker runtime's
    periodic loop (`workers.runtime.run_periodic`): a failed pass (Redis restarting, say) is logged and the next
    retries; with `once` it fails the run."""
    from fyp.config import load_settings
    from fyp.embeddings import load_encoders
    from fyp.serving import FeatureClient

    settings = load_settings()
    client = settings.redis_client()
    _, users = load_encoders(config.model_source)
    refresher = UserEmbeddingRefresher(client, FeatureClient(client), users, config)
    log.info("user embeddings with %s every %.0f s", users.name, config.every.total_seconds())
    run_periodic(lambda: log.info("pass: %s", refresher.run_pass()), every_s=config.every.total_seconds(),
                 once=once, stop=stop)


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run()
