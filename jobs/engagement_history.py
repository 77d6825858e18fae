"""Engagement history: every engagement event from Kafka into the Iceberg table, exactly once.

Iceberg commits on each Flink checkpoint, so the table's visibility delay is the checkpoint interval
(execution.checkpointing.interval, 60 s by default; `fyp submit --checkpoint-interval` overrides it).
Malformed records are left to the features job, which owns the dead-letter topic. Decoding is the Java
DECODE_ENGAGEMENT (udfs/java/envelope, as the features and exploration jobs): no Python per event. It is called
without an allowed lateness: the history keeps late events too.
"""

from __future__ import annotations

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from connectors.iceberg_catalog import register_iceberg_catalog
from connectors.kafka_source import kafka_raw_source
from fyp.config import Settings, load_settings
from fyp.pipelines import ENGAGEMENT_HISTORY_JOB as PIPELINE
from schemas.tables import ENGAGEMENT_HISTORY
from schemas.topics import ENGAGEMENT
from udfs.envelope import ENGAGEMENT_COLUMNS
from udfs.flink_functions import register_java_decoder

__all__ = ["build_engagement_history"]


def build_engagement_history(
    t_env: TableEnvironment, settings: Settings, *, table: str = ENGAGEMENT_HISTORY,
) -> StatementSet:
    # Source: raw payloads with their Kafka coordinates.
    t_env.create_temporary_table(
        "engagement_raw", kafka_raw_source(settings, topic=ENGAGEMENT.name, group_id=PIPELINE.group_id))
    catalog = register_iceberg_catalog(t_env, settings)

    # Steps: decode in Java (the envelope is single-object Avro), keep the good rows.
    java_decoder = register_java_decoder(t_env)
    t_env.create_temporary_view("decoded", t_env.sql_query(
        f"SELECT {java_decoder}(payload) AS e, kafka_partition, kafka_offset FROM engagement_raw"))
    columns = ", ".join(
        "TO_TIMESTAMP_LTZ(e.event_time, 3) AS event_time" if name == "event_time" else f"e.`{name}` AS `{name}`"
        for name in ENGAGEMENT_COLUMNS
    )

    # Sink: append to the history table.
    statements = t_env.create_statement_set()
    statements.add_insert_sql(
        f"INSERT INTO `{catalog}`.{table} "
        f"SELECT {columns}, kafka_partition, kafka_offset FROM decoded WHERE e.error IS NULL"
    )
    return statements


if __name__ == "__main__":
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in PIPELINE.flink_config().items():  # its name, and pipeline.max-parallelism to rescale
        env.get_config().set(key, value)
    build_engagement_history(env, load_settings()).execute()
