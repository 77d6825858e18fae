"""Kafka client options for Flink's Kafka SQL connector, from fyp settings (no PyFlink import)."""

from __future__ import annotations

from fyp.config import Settings

__all__ = ["flink_kafka_properties"]

# flink-sql-connector-kafka shades the Kafka client, so JAAS must name the shaded login module.
_PLAIN_LOGIN_MODULE = "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.plain.PlainLoginModule"


def flink_kafka_properties(settings: Settings) -> dict[str, str]:
    """`properties.*` options that connect Flink's Kafka connector to the SASL/PLAIN listener."""
    jaas = (f'{_PLAIN_LOGIN_MODULE} required username="{settings.kafka_user}" '
            f'password="{settings.kafka_password}";')
    return {
        "properties.bootstrap.servers": settings.kafka_bootstrap,
        "properties.security.protocol": "SASL_PLAINTEXT",
        "properties.sasl.mechanism": "PLAIN",
        "properties.sasl.jaas.config": jaas,
    }
