"""Redis sink tables (Java connector `fyp-redis`, connectors/java/redis-sink) for feature sets and serving sets.

Layouts are specified in docs/REDIS_LAYOUT.md. Writes are absolute values from Flink state, buffered and
pipelined by the Java writer, flushed on an interval and before every checkpoint; a write never replaces a
value with an older event time.
"""

from __future__ import annotations

from datetime import timedelta

from pyflink.table import DataTypes, Schema, TableDescriptor

from featurespec import FeatureSet
from featurespec.sql import sink_columns
from fyp.config import Settings
from udfs.flink_functions import flink_type

__all__ = ["redis_count_sink", "redis_feature_sink", "redis_sorted_set_sink"]


def _connection(builder: TableDescriptor.Builder, settings: Settings) -> TableDescriptor.Builder:
    # The TaskManager reads the password from its own environment, so it never enters the job graph.
    builder = (builder.option("host", settings.redis_host).option("port", str(settings.redis_port))
               .option("password-env", "FYP_REDIS_PASSWORD"))
    if settings.redis_cluster_nodes:
        # Cluster profile: the Java writer starts from these nodes, learns the slot map and writes slot-aware
        # (docs/REDIS_LAYOUT.md, "Writing to a Redis Cluster"); host/port are then unused.
        nodes = ",".join(f"{host}:{port}" for host, port in settings.redis_cluster_nodes)
        builder = builder.option("cluster.nodes", nodes)
    return builder


def _duration(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())} s"


def redis_feature_sink(settings: Settings, feature_set: FeatureSet, *, flush_interval_ms: int = 50) -> TableDescriptor:
    """One packed value per entity: event time, update time, then the feature set's columns as float32."""
    schema = Schema.new_builder()
    for name, sql_type in sink_columns(feature_set):
        data_type = flink_type(sql_type)
        if name in feature_set.entity.key_columns:
            data_type = data_type.not_null()
        schema = schema.column(name, data_type)
    schema = schema.primary_key(*feature_set.entity.key_columns).build()
    builder = (
        TableDescriptor.for_connector("fyp-redis")
        .schema(schema)
        .option("key-prefix", feature_set.key_prefix)
        .option("value.format", "packed")
        .option("event-time-column", "event_time")
        .option("ttl", _duration(feature_set.ttl))
        .option("sink.buffer-flush.interval", f"{flush_interval_ms} ms")
    )
    return _connection(builder, settings).build()


def redis_sorted_set_sink(
    settings: Settings, *, key_prefix: str, key_columns: tuple[str, ...], member_column: str, score_column: str,
    max_size: int, ttl: timedelta, greater_only: bool = False, flush_interval_ms: int = 50,
) -> TableDescriptor:
    """A sorted set per key (e.g. a user's recent-seen videos, a market's trending videos), trimmed to max_size.

    greater_only: a member's score only rises (ZADD GT), for rows that carry one event's score each."""
    schema = Schema.new_builder()
    for name in (*key_columns, member_column):
        schema = schema.column(name, DataTypes.STRING().not_null())
    schema = schema.column(score_column, DataTypes.DOUBLE()).primary_key(*key_columns, member_column).build()
    builder = (
        TableDescriptor.for_connector("fyp-redis")
        .schema(schema)
        .option("key-prefix", key_prefix)
        .option("value.format", "zset")
        .option("zset.member-column", member_column)
        .option("zset.score-column", score_column)
        .option("zset.max-size", str(max_size))
        .option("zset.score-update", "greater" if greater_only else "replace")
        .option("ttl", _duration(ttl))
        .option("sink.buffer-flush.interval", f"{flush_interval_ms} ms")
    )
    return _connection(builder, settings).build()


def redis_count_sink(
    settings: Settings, *, key_prefix: str, key_column: str, count_column: str, event_time_column: str,
    ttl: timedelta, flush_interval_ms: int = 50,
) -> TableDescriptor:
    """A hash per key holding one count (field `count_column`, plus the sink's `_et` and `_ut`), written as an
    absolute value from the job's state (e.g. an author's follower count); ttl 0 keeps it forever.

    A count with an older event time than the stored one is not written (the stale-write rule)."""
    schema = (Schema.new_builder()
              .column(key_column, DataTypes.STRING().not_null())
              .column(count_column, DataTypes.BIGINT())
              .column(event_time_column, DataTypes.BIGINT())
              .primary_key(key_column).build())
    builder = (
        TableDescriptor.for_connector("fyp-redis")
        .schema(schema)
        .option("key-prefix", key_prefix)
        .option("value.format", "hash")
        .option("event-time-column", event_time_column)
        .option("ttl", _duration(ttl))
        .option("sink.buffer-flush.interval", f"{flush_interval_ms} ms")
    )
    return _connection(builder, settings).build()
