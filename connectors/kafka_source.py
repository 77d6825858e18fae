"""Kafka source tables for Flink SQL: raw Avro payloads plus the record's Kafka coordinates.

The value stays raw bytes: the single-object Avro envelope is decoded by `udfs`, so that a bad record becomes a
dead letter instead of failing the job (the SQL `avro` format has no ignore-parse-errors option). Producers set
the Kafka timestamp to the event time, so the watermark is declared here, without decoding.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pyflink.table import DataTypes, Schema, TableDescriptor

from connectors.kafka_options import flink_kafka_properties
from fyp.config import Settings

__all__ = ["kafka_raw_source"]

StartFrom = Literal["group-offsets", "earliest-offset", "latest-offset"]


def kafka_raw_source(
    settings: Settings, *, topic: str, group_id: str, start_from: StartFrom = "group-offsets",
    out_of_orderness: timedelta = timedelta(milliseconds=500),
) -> TableDescriptor:
    """A table of `payload BYTES` with `kafka_partition`, `kafka_offset`, `kafka_time` (the event time, with
    the watermark) and `proc_time`.

    out_of_orderness: how far behind the newest Kafka timestamp the watermark trails; default 500 ms.
    """
    delay_ms = int(out_of_orderness.total_seconds() * 1000)
    schema = (
        Schema.new_builder()
        .column("payload", DataTypes.BYTES())
        .column_by_metadata("kafka_partition", DataTypes.INT(), "partition", True)
        .column_by_metadata("kafka_offset", DataTypes.BIGINT(), "offset", True)
        .column_by_metadata("kafka_time", DataTypes.TIMESTAMP_LTZ(3), "timestamp", True)
        .column_by_expression("proc_time", "PROCTIME()")
        .watermark("kafka_time", f"kafka_time - INTERVAL '{delay_ms / 1000:.3f}' SECOND")
        .build()
    )
    builder = (
        TableDescriptor.for_connector("kafka")
        .schema(schema)
        .format("raw")
        .option("topic", topic)
        .option("properties.group.id", group_id)
        .option("scan.startup.mode", start_from)
        # Offsets are committed on checkpoints; with group-offsets a fresh group starts at the beginning.
        .option("properties.auto.offset.reset", "earliest")
        .option("properties.commit.offsets.on.checkpoint", "true")
        .option("scan.watermark.idle-timeout", "5 s")
    )
    for key, value in flink_kafka_properties(settings).items():
        builder = builder.option(key, value)
    return builder.build()
