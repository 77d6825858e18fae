"""User-embedding worker: refreshes `fyp:user_embedding:v2:{user_id}` for the users who were active lately.

Which users: every `every` seconds, scan the recent-seen sets the features job writes
(`fyp:recent_seen:v1:{user}`: impressions, watches, skips) and pick the users whose newest entry is newer than
their last refresh and within `active_within` (24 h): anything a user did can change their features.

What is read for each, the user tower's inputs as training reads them (training/watch_outcomes.py):
- the history: the RECENT_POSITIVES serving set (`fyp:recent_positives:v1:{user}`: the videos the user
  completed, liked or shared, newest first, at most 50), the set training's `recent_positives` column replays;
- the user's features: `FeatureClient.get("user", id)` (`UserFeatures.from_entity`), the values training's
  `user_engagement__*` columns hold;
- only for the content-projection fallback (no trained model), the metadata of the history's videos
  (`fyp:video:v1:*`); a trained model reads ids and features only.
They go through the towers' `UserEncoder` (docs/EMBEDDINGS.md), which calls the user tower's one input function
(`fyp.embeddings.inputs.user_inputs`), the same one training calls. The vector is `SET` with the model's name
(`fyp.index.users.encode_user_embedding`) under the key the index service reads, with a TTL (default 24 h):
a user who stops coming back loses the embedding, and ANN is skipped for them.

Which model: the one the index service serves (`fyp:index_model:v1:{index}`, which it publishes); the worker
loads that model from $FYP_HOME when it changes (after `fyp index reembed` swapped the index) and re-encodes
every active user at its next pass, since the index refuses the old model's vectors from the swap on. Until a
service has published a model, the worker encodes with the one it started with.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from connectors.redis_video_store import video_key
from features.serving_sets import RECENT_POSITIVES, RECENT_SEEN
from workers.runtime import run_periodic

__all__ = ["PassReport", "RefreshConfig", "UserEmbeddingRefresher", "due_users", "run", "user_encoder_for"]

log = logging.getLogger("fyp.user_embeddings")


@dataclass(frozen=True, kw_only=True)
class RefreshConfig:
    """every: seconds between passes (default 10). ttl: the embedding's lifetime (default 24 h).
    active_within: only users seen this recently (default 24 h). history_len: newest positives read (50, all
    RECENT_POSITIVES keeps). batch: users per encoder call (256). model_source: `fyp.embeddings.load_encoders`'
    source at start ("local"). index: the index service whose served model the worker follows (None: never
    change model)."""

    every: timedelta = timedelta(seconds=10)
    ttl: timedelta = timedelta(hours=24)
    active_within: timedelta = timedelta(hours=24)
    history_len: int = RECENT_POSITIVES.max_size
    batch: int = 256
    model_source: str = "local"
    index: str | None = "videos"

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
    (UserEncoder: `.name`, `.trained`, `.encode`); `refreshed` remembers each user's newest seen time at the last
    write. `encoder_for(model name) -> UserEncoder` loads the model the index serves when it changes (None: keep
    `users`)."""

    def __init__(self, client: Any, features: Any, users: Any, config: RefreshConfig = RefreshConfig(), *,
                 encoder_for: Callable[[str], Any] | None = None) -> None:
        self.redis = client
        self.features = features
        self.users = users
        self.config = config
        self.refreshed: dict[str, float] = {}
        self._encoder_for = encoder_for

    def follow_served_model(self) -> bool:
        """Load the model the index serves if it is not the one encoding now; True when the model changed (every
        active user is then due again: the index refuses the old model's vectors)."""
        if self._encoder_for is None or self.config.index is None:
            return False
        from fyp.index.users import SERVED_MODEL_KEY

        served = self.redis.get(SERVED_MODEL_KEY.format(name=self.config.index))
        served = _text(served) if served is not None else None
        if served is None or served == self.users.name:
            return False
        try:
            users = self._encoder_for(served)
        except Exception:  # the index's vectors stay refused until the model is here: say so, keep going
            log.exception("the index %s serves %s, which could not be loaded; encoding with %s",
                          self.config.index, served, self.users.name)
            return False
        log.info("the index %s serves %s: moving from %s, every active user is due", self.config.index, served,
                 self.users.name)
        self.users, self.refreshed = users, {}
        return True

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
        from fyp.index.users import USER_EMBEDDING_KEY, encode_user_embedding

        started = time.monotonic()
        self.follow_served_model()
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
            vectors = self._encode(batch)
            pipe = self.redis.pipeline(transaction=False)
            for user, vector in zip(batch, vectors, strict=True):
                if not vector.any():  # the fallback knows nothing about this user's videos
                    report.no_embedding += 1
                    continue
                pipe.set(USER_EMBEDDING_KEY.format(user_id=user), encode_user_embedding(self.users.name, vector),
                         ex=ttl_s)
                report.written += 1
            pipe.execute()
            for user in batch:
                self.refreshed[user] = newest.get(user, now)
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def _encode(self, users: list[str]):
        """The user tower's inputs, read as training reads them (see the module docstring), encoded."""
        from fyp.embeddings import UserFeatures, UserHistory

        pipe = self.redis.pipeline(transaction=False)
        for user in users:
            pipe.zrevrange(RECENT_POSITIVES.key_prefix + user, 0, self.config.history_len - 1)
        positives = [tuple(_text(v) for v in members) for members in pipe.execute()]  # newest first
        metas = {} if getattr(self.users, "trained", False) else self._metadata(positives)
        histories = [UserHistory(video_ids=ids, videos=tuple(metas[v] for v in ids if v in metas))
                     for ids in positives]
        features = [UserFeatures.from_entity(self.features.get("user", user)) for user in users]
        return self.users.encode(histories, features)

    def _metadata(self, histories: list[tuple[str, ...]]) -> dict[str, Any]:
        """VideoMeta of the histories' videos, for the content-projection fallback (`fyp.index.catalogue`)."""
        from fyp.index.catalogue import video_meta

        video_ids = sorted({v for ids in histories for v in ids})
        pipe = self.redis.pipeline(transaction=False)
        for video_id in video_ids:
            pipe.hgetall(video_key(video_id))
        metas = {}
        for video_id, raw in zip(video_ids, pipe.execute(), strict=True):
            if raw:
                metas[video_id] = video_meta({_text(k): _text(x) for k, x in raw.items()})
        return metas


def user_encoder_for(home: Any, name: str) -> Any:
    """The `UserEncoder` of the model called `name`, from $FYP_HOME/models/two-tower/ (or the fallback's);
    `ModelNotFound` when that model is not there."""
    from fyp.embeddings import PROJECTION_NAME, ModelNotFound, load_encoders
    from fyp.embeddings.store import local_models_dir, version_of

    if name == PROJECTION_NAME:
        return load_encoders("projection")[1]
    path = local_models_dir(home) / version_of(name) / "model.pt"
    if not path.is_file():
        raise ModelNotFound(f"model {name} is not in {local_models_dir(home)}")
    return load_encoders(path, fallback=False)[1]


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
    refresher = UserEmbeddingRefresher(client, FeatureClient(client), users, config,
                                       encoder_for=lambda name: user_encoder_for(settings.home, name))
    log.info("user embeddings with %s every %.0f s", users.name, config.every.total_seconds())
    run_periodic(lambda: log.info("pass: %s", refresher.run_pass()), every_s=config.every.total_seconds(),
                 once=once, stop=stop)


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run()
