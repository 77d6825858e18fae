"""The local stack without Docker: Kafka (KRaft), Redis, SeaweedFS (S3 + Iceberg REST) and a Flink cluster."""
