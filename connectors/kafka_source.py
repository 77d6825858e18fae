"""Kafka source tables for Flink SQL: raw Avro payloads plus the record's Kafka coordinates.

The value stays raw bytes: the single-object Avro envelope is decoded by `udfs`, so that a bad record becomes a
dead letter instead of failing the job (the SQL `avro` format has no ignore-parse-errors option). Producers set
the Kafka timestamp to the event time, so the watermark is declared here, without decoding.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pyflink.table import DataTypes, Schema, TableDescriptor

from connectors.job_options import JobOptions
from connectors.kafka_options import flink_kafka_properties
from fyp.config import Settings

__all__ = ["kafka_raw_source"]

StartFrom = Literal["group-offsets", "earliest-offset", "latest-offset"]


def kafka_raw_source(
    settings: Settings, *, topic: str, group_id: str, start_from: StartFrom = "group-offsets",
    out_of_orderness: timedelta = timedelta(milliseconds=500), options: JobOptions | None = None,
    with_key: bool = False,
) -> TableDescriptor:
    """A table of `payload BYTES` with `kafka_partition`, `kafka_offset`, `kafka_time` (the event time, with
    the watermark) and `proc_time`.

    with_key: also `kafka_key BYTES` (the record key, raw) and `kafka_headers MAP<STRING, BYTES>`, for a job
    whose dead letters must keep both (a replay then partitions the same way).

    out_of_orderness: how far behind the newest Kafka timestamp the watermark trails; default 500 ms.
    options: per-run overrides (group id, start offsets, end offsets for a bounded run).
    """
    options = options or JobOptions()
    delay_ms = int(out_of_orderness.total_seconds() * 1000)
    schema = Schema.new_builder()
    if with_key:
        schema = schema.column("kafka_key", DataTypes.BYTES())
    schema = (
        schema
        .column("payload", DataTypes.BYTES())
        .column_by_metadata("kafka_partition", DataTypes.INT(), "partition", True)
        .column_by_metadata("kafka_offset", DataTypes.BIGINT(), "offset", True)
        .column_by_metadata("kafka_time", DataTypes.TIMESTAMP_LTZ(3), "timestamp", True)
        .column_by_expression("proc_time", "PROCTIME()")
    )
    if with_key:
        schema = schema.column_by_metadata(
            "kafka_headers", DataTypes.MAP(DataTypes.STRING(), DataTypes.BYTES()), "headers", True)
    schema = (
        schema
        .watermark("kafka_time", f"kafka_time - INTERVAL '{delay_ms / 1000:.3f}' SECOND")
        .build()
    )
    builder = (
        TableDescriptor.for_connector("kafka")
        .schema(schema)
        .option("value.format", "raw")
        .option("topic", options.topic or topic)
        .option("properties.group.id", options.group_id or group_id)
        .option("scan.startup.mode", "specific-offsets" if options.start_offsets else start_from)
        # Offsets are committed on checkpoints; with group-offsets a fresh group starts at the beginning.
        .option("properties.auto.offset.reset", "earliest")
        .option("properties.commit.offsets.on.checkpoint", "true")
        .option("scan.watermark.idle-timeout", "5 s")
    )
    if with_key:
        builder = (builder.option("key.format", "raw").option("key.fields", "kafka_key")
                   .option("value.fields-include", "EXCEPT_KEY"))
    if options.start_offsets:
        builder = builder.option("scan.startup.specific-offsets", _offsets(options.start_offsets))
    if options.end_offsets:
        builder = (builder.option("scan.bounded.mode", "specific-offsets")
                   .option("scan.bounded.specific-offsets", _offsets(options.end_offsets)))
    for key, value in flink_kafka_properties(settings).items():
        builder = builder.option(key, value)
    return builder.build()


def _offsets(offsets: dict[int, int]) -> str:
    return ";".join(f"partition:{p},offset:{o}" for p, o in sorted(offsets.items()))
