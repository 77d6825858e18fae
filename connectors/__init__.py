"""Sources and sinks, named by system and direction.

Flink-side modules (`kafka_source`, `kafka_sink`, `iceberg_catalog`, `redis_feature_sink`) import PyFlink and
run in the Flink environment; `maven/` holds the jar manifests the install step resolves.
"""
