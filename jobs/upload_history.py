"""Upload history: every record of the uploads and status topics into `history.upload_events`, exactly once.

Reads fyp.uploads.v1 (UploadCompleted, TranscodeRequested/Completed/Failed, ModerationResult, Takedown) and
fyp.video-status.v1 (VideoStatusChanged), decodes them into one wide typed row (`udfs.upload_events`), and
appends them to the Iceberg table through Flink's Iceberg sink: commits follow checkpoints, as in
jobs/engagement_history.py. The `videos` dimension is not written here: the orchestration job owns each
video's state and appends it to `history.videos_changelog` (docs/ANALYSTS.md, "Uploads and videos").

- Decoding is a Python UDF: the payloads are single-object Avro with seven record types on two topics, which
  Flink's `avro` format cannot read (no fingerprint header, one schema per table, no ignore-parse-errors), and
  upload traffic is a few records per video, thousands a day: the Java decoder's speed buys nothing here
  (`to_upload_event_row` alone: ~82k records per CPU-second, measured 2026-11-24 under load 34).
- Undecodable records are skipped and counted (`fyp_upload_events_undecodable_total`); the job keeps running.
- The orchestrator's Kafka sink is at least once, so after its restart a status change can be on the topic
  twice with the same event_id: rows are deduplicated on event_id (first seen wins, state kept 7 days).
"""

from __future__ import annotations

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from connectors.iceberg_catalog import register_iceberg_catalog
from connectors.kafka_source import kafka_raw_source
from fyp.config import Settings, load_settings
from schemas.topics import UPLOADS, VIDEO_STATUS
from udfs.flink_functions import decode_upload_event
from udfs.upload_events import ARRAY_OWNERS, UPLOAD_EVENT_ROW_FIELDS

__all__ = ["GROUP_ID", "JOB_NAME", "build_upload_history"]

GROUP_ID = "fyp-upload-history"
JOB_NAME = "fyp-upload-history"
HISTORY_TABLE = "upload_events"
DEDUP_STATE_TTL = "7 d"  # longer than any redelivery: the orchestrator re-emits within one restart


def _column(name: str) -> str:
    if name == "event_time":
        return "TO_TIMESTAMP_LTZ(e.event_time, 3) AS event_time"
    if name in ARRAY_OWNERS:  # the UDF returns [] where the record has no such field: null it again
        return f"CASE WHEN e.event_type = '{ARRAY_OWNERS[name]}' THEN e.`{name}` END AS `{name}`"
    return f"e.`{name}` AS `{name}`"


def build_upload_history(t_env: TableEnvironment, settings: Settings, *, table: str = HISTORY_TABLE,
                         catalog: str | None = None) -> StatementSet:
    # Sources: raw payloads of both topics with their Kafka coordinates.
    for name, topic in (("uploads_raw", UPLOADS.name), ("status_raw", VIDEO_STATUS.name)):
        t_env.create_temporary_table(name, kafka_raw_source(settings, topic=topic, group_id=GROUP_ID))
    catalog = catalog or register_iceberg_catalog(t_env, settings)
    t_env.get_config().set("table.exec.state.ttl", DEDUP_STATE_TTL)

    # Steps: decode in Python, keep the good rows, the first of each event_id.
    t_env.create_temporary_function("decode_upload_event", decode_upload_event)
    t_env.create_temporary_view("decoded", t_env.sql_query(
        f"SELECT decode_upload_event(payload) AS e, '{UPLOADS.name}' AS kafka_topic, kafka_partition, kafka_offset, "
        f"proc_time FROM uploads_raw UNION ALL "
        f"SELECT decode_upload_event(payload) AS e, '{VIDEO_STATUS.name}' AS kafka_topic, kafka_partition, "
        f"kafka_offset, proc_time FROM status_raw"))
    columns = ", ".join(_column(name) for name, _ in UPLOAD_EVENT_ROW_FIELDS if name != "error")
    t_env.create_temporary_view("events", t_env.sql_query(
        f"SELECT {columns}, kafka_topic, kafka_partition, kafka_offset, proc_time FROM decoded "
        f"WHERE e.error IS NULL"))
    names = ", ".join(f"`{name}`" for name, _ in UPLOAD_EVENT_ROW_FIELDS if name != "error")
    t_env.create_temporary_view("first_seen", t_env.sql_query(
        f"SELECT {names}, kafka_topic, kafka_partition, kafka_offset FROM ("
        f"SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC) AS n FROM events) "
        f"WHERE n = 1"))

    # Sink: append to the history table.
    statements = t_env.create_statement_set()
    statements.add_insert_sql(f"INSERT INTO `{catalog}`.history.{table} SELECT * FROM first_seen")
    return statements


if __name__ == "__main__":
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("pipeline.name", JOB_NAME)
    build_upload_history(env, load_settings()).execute()
