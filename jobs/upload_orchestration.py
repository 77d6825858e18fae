"""Upload orchestration: every video's lifecycle, from UploadCompleted to ready, rejected, failed or removed.

Reads fyp.uploads.v1 (keyed by video_id), keeps one `udfs.upload_state.VideoState` per video in keyed
state, and emits TranscodeRequested (fyp.uploads.v1) and VideoStatusChanged (fyp.video-status.v1). Writes each
video's metadata to Redis (`fyp:video:v1:{video_id}`, `connectors.redis_video_store`). The transitions are pure
functions in `udfs/upload_lifecycle.py`; this file only wires them to Flink.

Why the DataStream API with a Python `KeyedProcessFunction`: upload traffic is low (thousands of videos a day,
a handful of events each, not per-view events), and the lifecycle needs per-key state with processing-time
timers (stage timeouts), which SQL does not express. For the same reason a synchronous Redis call per event
(duplicate claim, metadata write) is acceptable here. Nothing slow runs in Flink: transcoding and moderation
are the workers' (workers/transcoder.py, workers/moderator.py).

History (docs/ANALYSTS.md, "Uploads and videos"), in Iceberg, committed on checkpoints together with this job's
state and Kafka offsets, so a restore neither loses nor repeats a row:
- every accepted change goes, as the video's whole state (`udfs.upload_events.video_row`), to a side output
  appended to `history.videos_changelog`; `fyp sql` reads the latest row per video as `history.videos`;
- every record of the uploads and status topics is appended to `history.upload_events`: decoded by a Python UDF
  into one wide typed row (`udfs.upload_events`; Flink's `avro` format cannot read single-object Avro with seven
  record types on two topics, nor skip a bad record, and upload traffic is a few records per video, so the
  Java decoder's speed buys nothing: `to_upload_event_row` alone does ~82k records per CPU-second), skipping
  and counting undecodable records (`fyp_upload_events_undecodable_total`), deduplicated on event_id (this
  job's Kafka sink is at least once: after a restore a status change can be on the topic twice, same id).
  It is a pipeline of this job rather than a job of its own because a job of its own needs task slots of its
  own: the local TaskManager's 8 are taken by the features, history, orchestration and embedding jobs.

Duplicates: exact duplicates are found by the source's sha256 with a Redis claim (`SET` if absent, in a Lua
script), not with Flink state keyed by sha256: the claim is one call, the stream stays keyed by video_id only,
and a replay after a restore finds its own claim and is not a duplicate. The claim is released when a video
fails, kept when it is rejected or removed (a re-upload of removed bytes is rejected as a duplicate).

Job arguments: --stage-timeout-s (default 600), --max-attempts (default 3), e.g.
`submit_job(settings, "upload_orchestration", job_args=["--stage-timeout-s", "60"])`.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import timedelta

from pyflink.common import Row, Types
from pyflink.datastream import (
    DataStream,
    KeyedProcessFunction,
    OutputTag,
    RuntimeContext,
    StreamExecutionEnvironment,
)
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.table import StatementSet, StreamTableEnvironment
from pyflink.table.expressions import col

from connectors.iceberg_catalog import register_iceberg_catalog
from connectors.kafka_sink import kafka_raw_sink
from connectors.kafka_source import kafka_raw_source
from connectors.redis_video_store import RedisVideoStore
from fyp.config import Settings, load_settings
from fyp.pipelines import UPLOAD_ORCHESTRATION_JOB as PIPELINE
from schemas.registry import default_registry
from schemas.tables import UPLOAD_EVENTS, VIDEOS_CHANGELOG
from schemas.topics import UPLOADS, VIDEO_STATUS
from udfs.flink_functions import decode_upload_event
from udfs.upload_events import (
    ARRAY_OWNERS,
    RENDITION_FIELDS,
    RENDITIONS,
    UPLOAD_EVENT_ROW_FIELDS,
    VIDEO_FIELD_NAMES,
    VIDEO_ROW_FIELDS,
    video_row,
)
from udfs.upload_lifecycle import apply, content_claim, decode_event, on_timer
from udfs.upload_state import LifecycleConfig, Step, VideoState
from udfs.video_record import video_fields

__all__ = [
    "GROUP_ID",
    "JOB_NAME",
    "VideoLifecycle",
    "build_upload_orchestration",
    "config_from_args",
    "lifecycle",
    "upload_events_history",
]

GROUP_ID = PIPELINE.group_id
JOB_NAME = PIPELINE.pipeline_name
STATE_NAME = "video-lifecycle-v1"  # the state's layout version: a changed VideoState gets a new name
_TOPICS = {"uploads": UPLOADS.name, "status": VIDEO_STATUS.name}
EVENT_TYPE = Types.ROW_NAMED(["video_id", "record_name", "record"], [Types.STRING()] * 3)
OUTPUT_TYPE = Types.ROW_NAMED(
    ["topic", "record_key", "payload"],
    [Types.STRING(), Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.PRIMITIVE_ARRAY(Types.BYTE())],
)
HISTORY_GROUP_ID = "fyp-upload-history"  # its own offsets: the history reads both topics from their start
DEDUP_STATE_TTL = "7 d"  # of the event_id deduplication (the job's only SQL state): longer than any redelivery
log = logging.getLogger("fyp.upload_orchestration")


def _type_info(sql_type: str):
    if sql_type == RENDITIONS:
        return Types.OBJECT_ARRAY(Types.ROW_NAMED([n for n, _ in RENDITION_FIELDS],
                                                  [_type_info(t) for _, t in RENDITION_FIELDS]))
    return {"STRING": Types.STRING(), "BIGINT": Types.LONG(), "ARRAY<STRING>": Types.BASIC_ARRAY(Types.STRING())}[
        sql_type]


# Side output: the video's state after each accepted change (`udfs.upload_events.VIDEO_ROW_FIELDS`).
VIDEOS_TAG = OutputTag("videos", Types.ROW_NAMED(list(VIDEO_FIELD_NAMES), [_type_info(t) for _, t in VIDEO_ROW_FIELDS]))


class VideoLifecycle(KeyedProcessFunction):
    """Applies `udfs.upload_lifecycle` per video; `store_factory()` returns the Redis store (or a fake)."""

    def __init__(self, config: LifecycleConfig, store_factory) -> None:
        self.config = config
        self.store_factory = store_factory

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = runtime_context.get_state(ValueStateDescriptor(STATE_NAME, Types.STRING()))
        self.store = self.store_factory()
        self.registry = default_registry()
        group = runtime_context.get_metrics_group()
        self.changes = group.counter("fyp_upload_transitions_total")
        self.ignored = group.counter("fyp_upload_ignored_events_total")

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context):
        video_id, record_name, record = value[0], value[1], json.loads(value[2])  # an EVENT_TYPE row
        state = self._load()
        sha256 = content_claim(state, record_name, record)
        duplicate_of = self.store.claim_content(sha256, video_id) if sha256 else None
        now_ms = ctx.timer_service().current_processing_time()
        step = apply(state, record_name, record, now_ms=now_ms, config=self.config, duplicate_of=duplicate_of)
        yield from self._commit(state, step, ctx)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        state = self._load()
        yield from self._commit(state, on_timer(state, now_ms=timestamp, config=self.config), ctx)

    def _load(self) -> VideoState | None:
        text = self.state.value()
        return VideoState.from_json(text) if text else None

    def _commit(self, before: VideoState | None, step: Step, ctx):
        if not step.changed or step.state is None:
            self.ignored.inc()
            log.info("video %s: ignored (%s)", ctx.get_current_key(), step.ignored)
            return
        after = step.state
        self.state.update(after.to_json())
        if after.deadline_ms is not None and after.deadline_ms != (before.deadline_ms if before else None):
            ctx.timer_service().register_processing_time_timer(after.deadline_ms)
        if step.release_content:
            self.store.release_content(step.release_content, after.video_id)
        self.store.write(after.video_id, video_fields(after))
        self.changes.inc()
        key = after.video_id.encode()
        for out in step.outputs:
            yield Row(_TOPICS[out.destination], key, self.registry.encode(out.record_name, out.record))
        row = video_row(after)
        renditions = VIDEO_FIELD_NAMES.index("renditions")
        yield VIDEOS_TAG, Row(*row[:renditions], [Row(*r) for r in row[renditions]], *row[renditions + 1:])


def _to_event(row: Row):
    event = decode_event(bytes(row[0]))
    if event is None:  # not a lifecycle record: the producer's bug, visible in the upload API or worker logs
        return Row("", "", "")
    return Row(event.video_id, event.record_name, json.dumps(event.record))


def lifecycle(payloads: DataStream, *, config: LifecycleConfig, store_factory) -> DataStream:
    """Raw payload rows (one BYTES field) -> rows of (topic, record_key, payload) to emit; the video rows are
    its side output `VIDEOS_TAG`."""
    events = payloads.map(_to_event, output_type=EVENT_TYPE).filter(lambda e: e[0] != "")
    return (events.key_by(lambda e: e[0], key_type=Types.STRING())
            .process(VideoLifecycle(config, store_factory), output_type=OUTPUT_TYPE).name("video-lifecycle"))


def _history_column(name: str) -> str:
    if name == "event_time":
        return "TO_TIMESTAMP_LTZ(e.event_time, 3) AS event_time"
    if name in ARRAY_OWNERS:  # the UDF returns [] where the record has no such field: null it again
        return f"CASE WHEN e.event_type = '{ARRAY_OWNERS[name]}' THEN e.`{name}` END AS `{name}`"
    return f"e.`{name}` AS `{name}`"


def upload_events_history(t_env: StreamTableEnvironment, settings: Settings, catalog: str) -> str:
    """Views over both topics that end in `history_first_seen` (good records, first of each event_id); returns
    the INSERT into `history.upload_events`."""
    for name, topic in (("history_uploads_raw", UPLOADS.name), ("history_status_raw", VIDEO_STATUS.name)):
        t_env.create_temporary_table(name, kafka_raw_source(settings, topic=topic, group_id=HISTORY_GROUP_ID))
    t_env.get_config().set("table.exec.state.ttl", DEDUP_STATE_TTL)
    t_env.create_temporary_function("decode_upload_event", decode_upload_event)
    t_env.create_temporary_view("history_decoded", t_env.sql_query(
        f"SELECT decode_upload_event(payload) AS e, '{UPLOADS.name}' AS kafka_topic, kafka_partition, kafka_offset, "
        f"proc_time FROM history_uploads_raw UNION ALL "
        f"SELECT decode_upload_event(payload) AS e, '{VIDEO_STATUS.name}' AS kafka_topic, kafka_partition, "
        f"kafka_offset, proc_time FROM history_status_raw"))
    fields = [name for name, _ in UPLOAD_EVENT_ROW_FIELDS if name != "error"]
    t_env.create_temporary_view("history_events", t_env.sql_query(
        f"SELECT {', '.join(_history_column(n) for n in fields)}, kafka_topic, kafka_partition, kafka_offset, "
        f"proc_time FROM history_decoded WHERE e.error IS NULL"))
    names = ", ".join(f"`{name}`" for name in fields)
    t_env.create_temporary_view("history_first_seen", t_env.sql_query(
        f"SELECT {names}, kafka_topic, kafka_partition, kafka_offset FROM ("
        f"SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC) AS n FROM history_events) "
        f"WHERE n = 1"))
    return f"INSERT INTO `{catalog}`.{UPLOAD_EVENTS} SELECT * FROM history_first_seen"


def build_upload_orchestration(
    env: StreamExecutionEnvironment, settings: Settings, *, config: LifecycleConfig = LifecycleConfig(),
) -> StatementSet:
    t_env = StreamTableEnvironment.create(env)

    # Source: raw payloads of the uploads topic.
    t_env.create_temporary_table("uploads_raw", kafka_raw_source(settings, topic=UPLOADS.name, group_id=GROUP_ID))
    payloads = t_env.to_data_stream(t_env.from_path("uploads_raw").select(col("payload")))

    # Transforms: decode, key by video_id, apply the lifecycle (Redis writes happen here).
    processed = lifecycle(payloads, config=config, store_factory=lambda: RedisVideoStore.from_settings(settings))
    outputs = t_env.from_data_stream(processed)

    # Sinks: requests back to the uploads topic, status changes to the compacted status topic.
    statements = t_env.create_statement_set()
    for destination, topic in _TOPICS.items():
        t_env.create_temporary_table(f"{destination}_out", kafka_raw_sink(settings, topic=topic))
        rows = outputs.where(col("topic") == topic).select(col("record_key"), col("payload"))
        statements.add_insert(f"{destination}_out", rows)
    # Sink: each change's video row to the Iceberg changelog (committed on checkpoints).
    catalog = register_iceberg_catalog(t_env, settings)
    t_env.create_temporary_view("video_rows", t_env.from_data_stream(processed.get_side_output(VIDEOS_TAG)))
    times = {"created_ms": "created_at", "updated_ms": "updated_at"}
    columns = ", ".join(f"TO_TIMESTAMP_LTZ(`{n}`, 3) AS {times[n]}" if n in times else f"`{n}`"
                        for n in VIDEO_FIELD_NAMES)
    statements.add_insert_sql(f"INSERT INTO `{catalog}`.{VIDEOS_CHANGELOG} SELECT {columns} FROM video_rows")
    # Sink: every record of both topics to the upload history.
    statements.add_insert_sql(upload_events_history(t_env, settings, catalog))
    statements.attach_as_datastream()
    return statements


def config_from_args(argv: list[str] | None = None) -> LifecycleConfig:
    parser = argparse.ArgumentParser(prog="upload_orchestration")
    parser.add_argument("--stage-timeout-s", type=float, default=600.0, help="seconds per stage try")
    parser.add_argument("--max-attempts", type=int, default=3, help="tries per stage")
    args, _ = parser.parse_known_args(argv)
    return LifecycleConfig(stage_timeout=timedelta(seconds=args.stage_timeout_s), max_attempts=args.max_attempts)


if __name__ == "__main__":
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_max_parallelism(PIPELINE.max_parallelism)  # fixed key groups, so that it can rescale
    build_upload_orchestration(env, load_settings(), config=config_from_args())
    env.execute(JOB_NAME)
