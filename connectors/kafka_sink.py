"""Kafka sink tables for Flink SQL: raw bytes with a key, e.g. the dead-letter topic."""

from __future__ import annotations

from pyflink.table import DataTypes, Schema, TableDescriptor

from connectors.kafka_options import flink_kafka_properties
from fyp.config import Settings

__all__ = ["kafka_raw_sink"]


def kafka_raw_sink(settings: Settings, *, topic: str, with_headers: bool = False,
                   max_request_bytes: int | None = None) -> TableDescriptor:
    """A table of (`record_key BYTES`, `payload BYTES`) written to `topic`, at least once.

    with_headers: a third column `headers MAP<STRING, BYTES>` becomes the record's headers.
    max_request_bytes: the producer's `max.request.size`, for a topic whose records may pass the 1 MiB default.
    """
    schema = (
        Schema.new_builder()
        .column("record_key", DataTypes.BYTES())
        .column("payload", DataTypes.BYTES())
    )
    if with_headers:
        schema = schema.column_by_metadata("headers", DataTypes.MAP(DataTypes.STRING(), DataTypes.BYTES()))
    schema = schema.build()
    builder = (
        TableDescriptor.for_connector("kafka")
        .schema(schema)
        .option("topic", topic)
        .option("key.format", "raw")
        .option("key.fields", "record_key")
        .option("value.format", "raw")
        .option("value.fields-include", "EXCEPT_KEY")
        .option("sink.delivery-guarantee", "at-least-once")
    )
    if max_request_bytes is not None:
        builder = builder.option("properties.max.request.size", str(max_request_bytes))
    for key, value in flink_kafka_properties(settings).items():
        builder = builder.option(key, value)
    return builder.build()
