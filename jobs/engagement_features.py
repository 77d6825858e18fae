"""Engagement features: Kafka engagement events -> windowed features and serving sets in Redis.

Source: fyp.engagement.v1 (raw single-object Avro). Steps: decode (Python, once per event), route malformed
records to the dead-letter topic, then one GROUP BY per declared feature set (features/) using the Java
window aggregates. Sinks: the Java Redis writer (absolute values, never increments) and the DLQ topic.
"""

from __future__ import annotations

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from connectors.kafka_sink import kafka_raw_sink
from connectors.kafka_source import kafka_raw_source
from connectors.redis_feature_sink import redis_feature_sink
from features import ALL_FEATURE_SETS
from fyp.config import Settings, load_settings
from schemas.topics import ENGAGEMENT, ENGAGEMENT_DLQ
from udfs.envelope import ENGAGEMENT_ROW_FIELDS
from udfs.feature_sql import JAVA_AGGREGATES, feature_query
from udfs.featurespec import FeatureSet
from udfs.flink_functions import decode_engagement, encode_dead_letter

__all__ = ["JOB_CONFIG", "build_engagement_features", "engagement_views"]

GROUP_ID = "fyp-engagement-features"

# Mini-batches bound both the Redis write rate per key and the added latency (allow-latency).
JOB_CONFIG = {
    "pipeline.name": "fyp-engagement-features",
    "table.exec.mini-batch.enabled": "true",
    "table.exec.mini-batch.allow-latency": "200 ms",
    "table.exec.mini-batch.size": "5000",
    "table.optimizer.agg-phase-strategy": "TWO_PHASE",
    # Idle entities leave state after the longest window (24 h) plus a margin.
    "table.exec.state.ttl": "25 h",
}


def engagement_views(t_env: TableEnvironment, raw_table: str) -> None:
    """Views `decoded` (every record, with `e.error`) and `engagement` (good rows) over a raw payload table."""
    t_env.create_temporary_function("decode_engagement", decode_engagement)
    t_env.create_temporary_function("encode_dead_letter", encode_dead_letter)
    for name, java_class in JAVA_AGGREGATES.items():
        t_env.execute_sql(f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS '{java_class}' LANGUAGE JAVA")
    t_env.create_temporary_view("decoded", t_env.sql_query(
        f"SELECT decode_engagement(payload) AS e, payload, kafka_partition, kafka_offset FROM `{raw_table}`"))
    columns = ", ".join(f"e.`{name}` AS `{name}`" for name, _ in ENGAGEMENT_ROW_FIELDS if name != "error")
    t_env.create_temporary_view("engagement", t_env.sql_query(
        f"SELECT {columns} FROM decoded WHERE e.error IS NULL"))


def build_engagement_features(
    t_env: TableEnvironment, settings: Settings, *, feature_sets: tuple[FeatureSet, ...] = ALL_FEATURE_SETS,
) -> StatementSet:
    # Source: raw payloads with their Kafka coordinates.
    t_env.create_temporary_table("engagement_raw", kafka_raw_source(settings, topic=ENGAGEMENT.name, group_id=GROUP_ID))

    # Steps: decode once; good rows feed every feature set, bad rows become dead letters.
    engagement_views(t_env, "engagement_raw")

    # Sinks: one Redis table per feature set, and the dead-letter topic.
    statements = t_env.create_statement_set()
    for feature_set in feature_sets:
        sink = f"redis_{feature_set.name}"
        t_env.create_temporary_table(sink, redis_feature_sink(settings, feature_set))
        statements.add_insert_sql(f"INSERT INTO {sink} {feature_query(feature_set)}")
    t_env.create_temporary_table("dead_letters", kafka_raw_sink(settings, topic=ENGAGEMENT_DLQ.name))
    statements.add_insert_sql(
        "INSERT INTO dead_letters SELECT CAST(NULL AS BYTES), "
        f"encode_dead_letter('{ENGAGEMENT.name}', kafka_partition, kafka_offset, e.error, payload) "
        "FROM decoded WHERE e.error IS NOT NULL")
    return statements


if __name__ == "__main__":
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in JOB_CONFIG.items():
        env.get_config().set(key, value)
    build_engagement_features(env, load_settings()).execute()
