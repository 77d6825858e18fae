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
from redis.cluster import RedisCluster

from features import SERVED_FEATURE_SETS
from features.serving_sets import RECENT_SEEN
from featurespec import FeatureSet
from fyp.config import Settings, load_settings
from fyp.serving.cluster_reads import NodeReader, is_cluster
from fyp.serving.layout import ReadPlan, decode_matrix, decode_row
from fyp.serving.served_log import ServedLog, ServedRead, new_request_id
from udfs.limits import invalid_id_reason

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
    request_id: str | None = None  # the caller's, else (with a served log) the one the log would record


def _key(feature_set: FeatureSet, entity_id: str | Sequence[str], namespace: str = "") -> str:
    parts = (entity_id,) if isinstance(entity_id, str) else tuple(entity_id)
    if len(parts) != len(feature_set.entity.key_columns):
        raise ValueError(f"{feature_set.entity.name} is keyed by {feature_set.entity.key_columns}, got {parts}")
    for part in parts:
        if invalid_id_reason(part):  # the job dead-letters such ids: no value can exist (docs/REDIS_LAYOUT.md)
            raise ValueError(f"{feature_set.entity.name} id {part!r} holds ':' or a control character; "
                             "no such entity can be stored")
    return namespace + feature_set.key_prefix + ":".join(parts)


def _keys(feature_set: FeatureSet, ids: Sequence[str], namespace: str = "") -> list[str]:
    """Keys of many entities of a one-column key (videos): `_key`'s checks per id cost ~1.4 µs each, a third
    of a 500-candidate read; ids of a multi-column key go through `_key` (they need joining anyway). A one-column
    id holding `:` is not refused here: it cannot collide with another entity's key, and reads as missing."""
    if len(feature_set.entity.key_columns) != 1:
        return [_key(feature_set, i, namespace) for i in ids]
    prefix = namespace + feature_set.key_prefix
    return [prefix + i for i in ids]


class FeatureClient:
    """Reads feature sets and serving sets written by the engagement features job, from a single Redis or a
    Redis Cluster (there one round trip per node, the nodes at once: `fyp.serving.cluster_reads`)."""

    def __init__(self, client: redis.Redis | RedisCluster,
                 feature_sets: Sequence[FeatureSet] = SERVED_FEATURE_SETS, *, namespace: str = "",
                 served_log: ServedLog | None = None) -> None:
        """feature_sets: the sets to read, one version per name (default: each at its `features.READ_VERSIONS`).
        namespace: put before every key (default none); a benchmark's scratch keys on a shared Redis Cluster,
        which has no databases to keep them apart.
        served_log: where `for_request` hands what it served, sampled (fyp/serving/served_log.py); None (the
        default) logs nothing and costs the read one `is not None` check."""
        self.redis = client
        self.served_log = served_log
        self.cluster = is_cluster(client)
        self._nodes = NodeReader(client) if self.cluster else None
        self.namespace = namespace
        # An entity may have several sets (e.g. video engagement and video comment sentiment): the first
        # declared is its main set, which `matrix` and `for_request` read; `get` reads them all.
        self.sets: dict[str, list[FeatureSet]] = {}
        for fs in feature_sets:
            self.sets.setdefault(fs.entity.name, []).append(fs)
        self.plans = {entity: ReadPlan.of(sets[0]) for entity, sets in self.sets.items()}
        self._set_plans = {fs.qualified_name: ReadPlan.of(fs) for fs in feature_sets}

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, db: int = 0, namespace: str = "",
                      served_log: ServedLog | None = None) -> FeatureClient:
        """A client on one dedicated connection (redis-py's `single_connection_client`, guarded by a lock, so
        still thread-safe): no pool checkout per read, 20-60 µs of a ~100 µs single-entity read. A server
        with many threads reading at once should give each its own FeatureClient, or pass a pooled client.
        On a Redis Cluster (`Settings.redis_cluster_nodes`), a `RedisCluster` with a pool per node; it has no
        databases, so `db` must stay 0 there (use `namespace`)."""
        s = settings or load_settings()
        if s.redis_cluster_nodes:
            if db:
                raise ValueError("Redis Cluster has no databases: keep db=0 and set a namespace instead")
            return cls(s.redis_client(), namespace=namespace, served_log=served_log)
        return cls(s.redis_client(db=db, single_connection_client=True), namespace=namespace, served_log=served_log)

    def get(self, entity: str, entity_id: str | Sequence[str], *, now_ms: int | None = None) -> EntityFeatures | None:
        """One entity's features (with ratios) from all its feature sets in one MGET, or None if Redis holds
        none. Event and update times are those of the main set (else of the first set found)."""
        if entity not in self.sets:
            raise ValueError(f"no feature set for entity {entity!r}; known: {', '.join(self.sets)}")
        sets = self.sets[entity]
        if len(sets) == 1 and not self.cluster:  # a GET: less for redis-py to build and parse than a one-key MGET
            return self._entity(sets[0], entity_id, self._get_value(_key(sets[0], entity_id, self.namespace)), now_ms)
        values = self._mget([_key(fs, entity_id, self.namespace) for fs in sets])
        if len(sets) == 1:
            return self._entity(sets[0], entity_id, values[0], now_ms)
        found = [f for fs, v in zip(sets, values, strict=True) if (f := self._entity(fs, entity_id, v, now_ms))]
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        merged = {name: value for f in found for name, value in f.values.items()}
        return EntityFeatures(entity=entity, entity_id=found[0].entity_id, event_time_ms=found[0].event_time_ms,
                              update_time_ms=found[0].update_time_ms, values=merged)

    def matrix(
        self, entity: str, ids: Sequence[str], *, now_ms: int | None = None,
    ) -> tuple[tuple[str, ...], np.ndarray]:
        """Column names and an (len(ids), columns) matrix for many entities, in one MGET."""
        plan = self.plans[entity]
        values = self._mget(_keys(plan.feature_set, ids, self.namespace)) if ids else []
        matrix, _ = decode_matrix(plan, values, now_ms or _now_ms())
        return plan.columns, matrix

    def for_request(self, user_id: str, video_ids: Sequence[str], *, now_ms: int | None = None,
                    request_id: str | None = None) -> RequestFeatures:
        """The user's features, the candidates' feature matrix and the recent-seen set: one pipelined round trip.

        request_id: the ranking request's id, which a served log samples on and records (default: a random one
        when the client has a served log, else none). With a served log, a sampled read is queued for it and
        the read returns at once: the log never blocks a read (a full queue drops the record and counts it)."""
        now = now_ms or _now_ms()
        user_plan, video_plan = self.plans["user"], self.plans["video"]
        user_key = _key(user_plan.feature_set, user_id, self.namespace)
        video_keys = _keys(video_plan.feature_set, video_ids, self.namespace)
        seen_key = self.namespace + RECENT_SEEN_PREFIX + user_id
        if self.cluster:
            replies = self._nodes.read([user_key, *video_keys], [("ZRANGE", seen_key, 0, -1)])
            user_value, video_values, seen = replies[0], replies[1:-1], replies[-1]
        else:
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(user_key)
            pipe.mget(video_keys or ["-"])
            pipe.zrange(seen_key, 0, -1)
            user_value, video_values, seen = pipe.execute()
        video_values = video_values[: len(video_ids)]
        videos, _ = decode_matrix(video_plan, video_values, now)
        if self.served_log is not None:
            request_id = self._log(request_id, now, user_id, video_ids, user_value, video_values)
        return RequestFeatures(
            user=self._entity(user_plan.feature_set, user_id, user_value, now),
            video_columns=video_plan.columns, videos=videos,
            recent_seen={m.decode() for m in seen}, request_id=request_id,
        )

    def _log(self, request_id: str | None, now: int, user_id: str, video_ids: Sequence[str],
             user_value: bytes | None, video_values: list[bytes | None]) -> str:
        """Hand a sampled read to the served log (raw values: it decodes them off the read path); the request id."""
        request_id = request_id or new_request_id()
        if self.served_log.wants(request_id):
            self.served_log.offer(ServedRead(
                request_id=request_id, served_time_ms=now, user_id=user_id, video_ids=tuple(video_ids),
                user_value=user_value, video_values=video_values, user_plan=self.plans["user"],
                video_plan=self.plans["video"]))
        return request_id

    def _mget(self, keys: list[str]) -> list[bytes | None]:
        """MGET on a single Redis; on a cluster, a GET of each key, one round trip per node (their slots differ)."""
        return self._nodes.read(keys) if self._nodes else self.redis.mget(keys)

    def _get_value(self, key: str) -> bytes | None:
        """GET on the client's dedicated connection, past redis-py's per-command wrapper (a retry closure and
        metrics hooks: ~8 µs of a ~90 µs single-entity read, docs/REDIS_LAYOUT.md). The command still goes
        through redis-py's connection and parser; on a connection error the read is redone by redis-py's own
        path, which reconnects and retries as configured. A pooled client (no dedicated connection), or a
        redis-py without the lock that guards that connection, always takes that path."""
        connection = self.redis.connection
        lock = getattr(self.redis, "single_connection_lock", None)  # redis-py >= 5.1 guards the connection
        if connection is None or lock is None:
            return self.redis.get(key)
        with lock:
            try:
                connection.send_packed_command(connection.pack_command("GET", key))
                return connection.read_response()
            except (redis.ConnectionError, redis.TimeoutError):
                connection.disconnect()
        return self.redis.get(key)

    def _entity(
        self, feature_set: FeatureSet, entity_id, value: bytes | None, now_ms: int | None,
    ) -> EntityFeatures | None:
        decoded = decode_row(self._set_plans[feature_set.qualified_name], value, now_ms or _now_ms())
        if decoded is None:
            return None
        values, event_time = decoded
        return EntityFeatures(
            entity=feature_set.entity.name,
            entity_id=entity_id if isinstance(entity_id, str) else ":".join(entity_id),
            event_time_ms=event_time, update_time_ms=int.from_bytes(value[8:16], "little", signed=True),
            values=values,
        )


def _now_ms() -> int:
    return int(time.time() * 1000)
