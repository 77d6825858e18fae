"""`FeatureClient`: what serving reads from Redis, one round trip per request.

>>> client = FeatureClient.from_settings()                      # doctest: +SKIP
>>> request = client.for_request("u1", ["v1", "v2"])            # doctest: +SKIP
>>> request.videos.shape                                        # doctest: +SKIP
(2, 78)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import redis

from features import ALL_FEATURE_SETS, feature_set_for_entity
from features.serving_sets import RECENT_SEEN
from fyp.config import Settings, load_settings
from fyp.serving.layout import ReadPlan, decode_matrix, ratio_columns
from udfs.featurespec import FeatureSet

__all__ = ["RECENT_SEEN_PREFIX", "EntityFeatures", "FeatureClient", "RequestFeatures"]

RECENT_SEEN_PREFIX = RECENT_SEEN.key_prefix


@dataclass(frozen=True, kw_only=True)
class EntityFeatures:
    """One entity's features as of read time, with the event and update times its value reflects."""

    entity: str
    entity_id: str
    event_time_ms: int
    update_time_ms: int
    values: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class RequestFeatures:
    """Everything a ranking request needs: the user's row, a matrix of candidate rows, the recent-seen set."""

    user: EntityFeatures | None
    video_columns: tuple[str, ...]
    videos: np.ndarray  # shape (len(video_ids), len(video_columns)); NaN where a video has no features
    recent_seen: set[str]


def _key(feature_set: FeatureSet, entity_id: str | Sequence[str]) -> str:
    parts = (entity_id,) if isinstance(entity_id, str) else tuple(entity_id)
    if len(parts) != len(feature_set.entity.key_columns):
        raise ValueError(f"{feature_set.entity.name} is keyed by {feature_set.entity.key_columns}, got {parts}")
    return feature_set.key_prefix + ":".join(parts)


class FeatureClient:
    """Reads feature sets and serving sets written by the engagement features job."""

    def __init__(self, client: redis.Redis, feature_sets: Sequence[FeatureSet] = ALL_FEATURE_SETS) -> None:
        self.redis = client
        self.plans = {fs.entity.name: ReadPlan.of(fs) for fs in feature_sets}

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> FeatureClient:
        s = settings or load_settings()
        return cls(redis.Redis(host=s.redis_host, port=s.redis_port, password=s.redis_password))

    def get(self, entity: str, entity_id: str | Sequence[str], *, now_ms: int | None = None) -> EntityFeatures | None:
        """One entity's features (with ratios), or None if Redis holds none."""
        feature_set = feature_set_for_entity(entity)
        value = self.redis.get(_key(feature_set, entity_id))
        return self._entity(feature_set, entity_id, value, now_ms)

    def matrix(
        self, entity: str, ids: Sequence[str], *, now_ms: int | None = None,
    ) -> tuple[tuple[str, ...], np.ndarray]:
        """Column names and an (len(ids), columns) matrix for many entities, in one MGET."""
        plan = self.plans[entity]
        values = self.redis.mget([_key(plan.feature_set, i) for i in ids]) if ids else []
        matrix, _ = decode_matrix(plan, values, now_ms or _now_ms())
        return plan.columns, matrix

    def for_request(self, user_id: str, video_ids: Sequence[str], *, now_ms: int | None = None) -> RequestFeatures:
        """The user's features, the candidates' feature matrix and the recent-seen set: one pipelined round trip."""
        now = now_ms or _now_ms()
        user_plan, video_plan = self.plans["user"], self.plans["video"]
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(_key(user_plan.feature_set, user_id))
        pipe.mget([_key(video_plan.feature_set, v) for v in video_ids] or ["-"])
        pipe.zrange(RECENT_SEEN_PREFIX + user_id, 0, -1)
        user_value, video_values, seen = pipe.execute()
        videos, _ = decode_matrix(video_plan, video_values[: len(video_ids)], now)
        return RequestFeatures(
            user=self._entity(user_plan.feature_set, user_id, user_value, now),
            video_columns=video_plan.columns, videos=videos,
            recent_seen={m.decode() for m in seen},
        )

    def _entity(
        self, feature_set: FeatureSet, entity_id, value: bytes | None, now_ms: int | None,
    ) -> EntityFeatures | None:
        if value is None:
            return None
        plan = self.plans[feature_set.entity.name]
        matrix, event_times = decode_matrix(plan, [value], now_ms or _now_ms())
        values = {c: float(v) for c, v in zip(plan.columns, matrix[0], strict=True)}
        for name, numerator, denominator in ratio_columns(feature_set):
            values[name] = values[numerator] / values[denominator] if values[denominator] > 0 else float("nan")
        return EntityFeatures(
            entity=feature_set.entity.name,
            entity_id=entity_id if isinstance(entity_id, str) else ":".join(entity_id),
            event_time_ms=int(event_times[0]), update_time_ms=int.from_bytes(value[8:16], "little", signed=True),
            values=values,
        )


def _now_ms() -> int:
    return int(time.time() * 1000)
