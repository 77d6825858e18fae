"""The capacity model: what a deployment serving `mau` users needs, from rates measured on one machine.

Every input is a field of `CapacityInputs` with its unit and where its default comes from: "measured" names the
measurement (docs/PERFORMANCE.md, docs/UPLOADS.md, docs/CAPACITY.md), "design" the load the design states, and
"assumed" a figure this machine cannot measure, with the reason. `plan` does the arithmetic and returns every
intermediate value, so that `fyp capacity --json` (or docs/CAPACITY.md) shows how each number follows; change one
input on the command line and the plan is redone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

__all__ = ["CapacityInputs", "CapacityPlan", "override", "plan"]

SECONDS_PER_DAY = 86_400
GB = 1e9


@dataclass(frozen=True, kw_only=True)
class CapacityInputs:
    # The design's load.
    mau: float = 1e9  # design: monthly active users
    events_per_user_per_day: float = 100  # design: engagement events per user per day
    peak_to_mean: float = 3.0  # design: peak load over the daily mean
    uploads_per_day: float = 100e6  # design
    # Measured on this machine (2 cores; sources in docs/CAPACITY.md).
    taskmanager_cpu_s_per_million_events: float = 62.0  # all 11 sets; PERFORMANCE.md 2026-11-25, 61.6-62.0
    redis_cpu_s_per_million_events: float = 12.3  # same runs, 11.8-12.3 (one Redis process)
    event_bytes: float = 134.0  # Avro value 117.8 B + key 5.9 B + ~10 B record overhead in a batch (CAPACITY.md)
    transcode_cpu_s_per_source_s: float = 5.5  # 1080p default ladder (H.264 rungs + H.265 + AV1 top): UPLOADS.md
    index_bytes_per_vector: float = 311.0  # a saved 200k-vector ScaNN index, dim 64, per vector (CAPACITY.md)
    # Redis MEMORY USAGE per key, sampled on this machine (CAPACITY.md): the engagement set of each entity plus,
    # weighted by how many entities have one, its comment-sentiment set; recent-seen at its cap of 500 members.
    redis_bytes_per_entity: dict[str, float] = field(default_factory=lambda: {
        "user": 296.0, "video": 463.0, "author": 248.0, "sound": 241.0, "user_author": 216.0,
        "user_hashtag": 185.0, "user_recent_seen": 48_300.0})
    # Assumed: what one machine cannot show.
    active_user_fraction: float = 0.7  # users with a key alive (2-day TTL): roughly 2 days of DAU
    live_videos: float = 500e6  # with an event within the 2-day TTL: two days of uploads plus the catalogue's head
    authors: float = 100e6
    sounds: float = 20e6
    author_pairs_per_user: float = 32  # user x author keys alive per active user (2-day TTL; CAPACITY.md)
    hashtag_pairs_per_user: float = 56  # user x hashtag keys alive per active user (2-day TTL; CAPACITY.md)
    indexed_videos: float = 2e9  # every servable video
    mean_upload_seconds: float = 30.0
    cpu_utilisation_at_peak: float = 0.6  # headroom for catch-up after a failure
    redis_gb_per_shard: float = 25.0  # a primary's dataset; a bigger one makes failover and resync slow
    broker_ingress_mb_per_s: float = 60.0  # per broker, leader writes + replica fetches, at RF 3
    partition_events_per_s: float = 16_000.0  # one consumer subtask's rate: 1e6 / TM CPU-s per 1M events
    replication_factor: int = 3
    index_gb_per_shard: float = 64.0  # RAM of one index replica


@dataclass(frozen=True, kw_only=True)
class CapacityPlan:
    inputs: dict[str, Any]
    mean_events_per_s: float
    peak_events_per_s: float
    taskmanager_cores: int
    redis_bytes: dict[str, float]
    redis_total_gb: float
    redis_primaries: int
    redis_replicas: int
    redis_cpu_cores_at_peak: float
    kafka_peak_mb_per_s: float
    kafka_partitions: int
    kafka_brokers: int
    transcode_source_s_per_day: float
    transcoder_cores: int
    index_total_gb: float
    index_shards: int


def plan(inputs: CapacityInputs) -> CapacityPlan:
    """The resources `inputs` call for; each figure rounds up."""
    if inputs.cpu_utilisation_at_peak <= 0 or inputs.cpu_utilisation_at_peak > 1:
        raise ValueError("cpu_utilisation_at_peak must be in (0, 1]")
    mean = inputs.mau * inputs.events_per_user_per_day / SECONDS_PER_DAY
    peak = mean * inputs.peak_to_mean
    tm_cores = math.ceil(peak * inputs.taskmanager_cpu_s_per_million_events / 1e6 / inputs.cpu_utilisation_at_peak)

    users = inputs.mau * inputs.active_user_fraction
    per_entity = inputs.redis_bytes_per_entity
    redis_bytes = {
        "user": users * per_entity["user"],
        "user_recent_seen": users * per_entity["user_recent_seen"],
        "video": inputs.live_videos * per_entity["video"],
        "author": inputs.authors * per_entity["author"],
        "sound": inputs.sounds * per_entity["sound"],
        "user_author": users * inputs.author_pairs_per_user * per_entity["user_author"],
        "user_hashtag": users * inputs.hashtag_pairs_per_user * per_entity["user_hashtag"],
    }
    total_gb = sum(redis_bytes.values()) / GB
    redis_cpu = peak * inputs.redis_cpu_s_per_million_events / 1e6
    # A primary executes commands on one thread: enough primaries for the memory and for the write CPU.
    primaries = max(math.ceil(total_gb / inputs.redis_gb_per_shard),
                    math.ceil(redis_cpu / inputs.cpu_utilisation_at_peak))

    kafka_mb = peak * inputs.event_bytes / 1e6
    partitions = max(math.ceil(peak / inputs.partition_events_per_s), tm_cores)
    brokers = max(inputs.replication_factor,
                  math.ceil(kafka_mb * inputs.replication_factor / inputs.broker_ingress_mb_per_s))

    source_s = inputs.uploads_per_day * inputs.mean_upload_seconds
    transcode_mean = source_s * inputs.transcode_cpu_s_per_source_s / SECONDS_PER_DAY
    transcoders = math.ceil(transcode_mean * inputs.peak_to_mean / inputs.cpu_utilisation_at_peak)

    index_gb = inputs.indexed_videos * inputs.index_bytes_per_vector / GB
    return CapacityPlan(
        inputs=asdict(inputs), mean_events_per_s=mean, peak_events_per_s=peak, taskmanager_cores=tm_cores,
        redis_bytes=redis_bytes, redis_total_gb=total_gb, redis_primaries=primaries, redis_replicas=primaries,
        redis_cpu_cores_at_peak=redis_cpu, kafka_peak_mb_per_s=kafka_mb, kafka_partitions=partitions,
        kafka_brokers=brokers, transcode_source_s_per_day=source_s, transcoder_cores=transcoders,
        index_total_gb=index_gb, index_shards=math.ceil(index_gb / inputs.index_gb_per_shard),
    )


def override(inputs: CapacityInputs, assignments: list[str]) -> CapacityInputs:
    """`inputs` with `name=value` assignments applied (`mau=2e9`, `redis_bytes_per_entity.video=500`).

    >>> override(CapacityInputs(), ["mau=2e9", "redis_bytes_per_entity.video=500"]).mau
    2000000000.0
    """
    changes: dict[str, Any] = {}
    per_entity = dict(inputs.redis_bytes_per_entity)
    known = {f.name: f for f in fields(CapacityInputs)}
    for item in assignments:
        name, sep, raw = item.partition("=")
        name = name.strip()
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{item!r}: expected name=number") from None
        if not sep:
            raise ValueError(f"{item!r}: expected name=number")
        if name.startswith("redis_bytes_per_entity."):
            entity = name.split(".", 1)[1]
            if entity not in per_entity:
                raise ValueError(f"no entity {entity!r}; known: {', '.join(per_entity)}")
            per_entity[entity] = value
        elif name in known and name != "redis_bytes_per_entity":
            changes[name] = int(value) if known[name].type == "int" else value
        else:
            raise ValueError(f"no input {name!r}; known: {', '.join(known)}")
    return replace(inputs, redis_bytes_per_entity=per_entity, **changes)
