"""Kafka client options for Flink's Kafka SQL connector, from fyp settings (no PyFlink import)."""

from __future__ import annotations

from fyp.config import Settings

__all__ = ["flink_kafka_properties"]

# flink-sql-connector-kafka shades the Kafka client, so JAAS must name the shaded login module.
_SHADED = "org.apache.flink.kafka.shaded.org.apache.kafka.common.security"
_LOGIN_MODULES = {
    "PLAIN": f"{_SHADED}.plain.PlainLoginModule",
    "SCRAM-SHA-256": f"{_SHADED}.scram.ScramLoginModule",
    "SCRAM-SHA-512": f"{_SHADED}.scram.ScramLoginModule",
}


def flink_kafka_properties(settings: Settings) -> dict[str, str]:
    """`properties.*` options that connect Flink's Kafka connector to the SASL listener (`kafka_sasl_mechanism`)."""
    jaas = (f'{_LOGIN_MODULES[settings.kafka_sasl_mechanism]} required username="{settings.kafka_user}" '
            f'password="{settings.kafka_password}";')
    return {
        "properties.bootstrap.servers": settings.kafka_bootstrap,
        "properties.security.protocol": "SASL_PLAINTEXT",
        "properties.sasl.mechanism": settings.kafka_sasl_mechanism,
        "properties.sasl.jaas.config": jaas,
    }
