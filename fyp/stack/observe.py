"""What the running pipeline did: records through Flink jobs, features in Redis, rows in Iceberg."""

from __future__ import annotations

import httpx

from connectors.iceberg_tables import catalog
from fyp.config import Settings
from schemas.tables import ENGAGEMENT_HISTORY
from schemas.topics import ENGAGEMENT_DLQ

__all__ = ["dead_letter_count", "feature_key_counts", "iceberg_row_count", "job_source_records"]


def job_source_records(settings: Settings, job_id: str) -> int:
    """Records the job's source operators have read so far (their `numRecordsOut`, summed over subtasks).

    A vertex's own `write-records` counts what leaves the operator chain, not what the source read.
    """
    base = f"{settings.flink_rest_url}/jobs/{job_id}"
    job = httpx.get(base, timeout=5).json()
    total = 0
    for vertex in job["vertices"]:
        if not vertex["name"].startswith("Source"):
            continue
        url = f"{base}/vertices/{vertex['id']}/subtasks/metrics"
        names = [m["id"] for m in httpx.get(url, timeout=5).json()
                 if m["id"].startswith("Source__") and m["id"].endswith(".numRecordsOut")]
        if names:
            values = httpx.get(url, params={"get": ",".join(names), "agg": "sum"}, timeout=5).json()
            total += sum(int(float(v["sum"])) for v in values)
    return total


def feature_key_counts(settings: Settings, prefixes: dict[str, str]) -> dict[str, int]:
    """Keys per feature set in Redis (SCAN by prefix; fine for a demo-sized keyspace)."""
    client = settings.redis_client()
    return {name: sum(1 for _ in client.scan_iter(match=f"{prefix}*", count=10_000))
            for name, prefix in prefixes.items()}


def iceberg_row_count(settings: Settings, table: str = ENGAGEMENT_HISTORY) -> int:
    """Rows in the table's current snapshot, from its summary (no data files read)."""
    snapshot = catalog(settings).load_table(table).current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary["total-records"])


def dead_letter_count(settings: Settings) -> int:
    """Messages in the dead-letter topic (high watermarks summed over partitions)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**settings.kafka_client_config(), "group.id": "fyp-observe", "log_level": 0})
    try:
        metadata = consumer.list_topics(ENGAGEMENT_DLQ.name, timeout=10).topics[ENGAGEMENT_DLQ.name]
        total = 0
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(ENGAGEMENT_DLQ.name, partition), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()
