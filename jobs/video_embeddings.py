"""Video embeddings: approved videos become vectors on fyp.video-embeddings.v1 and in the Iceberg embeddings table.

Reads the compacted status topic fyp.video-status.v1 (keyed by video_id). `ready` (moderation approved) asks
for an embedding; `rejected`, `failed` and `removed` (takedown) for a delete (`deleted = true`). The video's
text (caption, hashtags, OCR text) and media facts (duration, renditions, audio) come from its Redis hash
`fyp:video:v1:{id}`, written by the upload orchestration job before it emits the status (`udfs.video_embedding`).
It also keeps two candidate sources in Redis in step (`RedisVideoStore.record_searchable`): each author's
videos and the fresh-video pool (exploration), scored by approval time, so replays write the same values.

Batching: the stream is keyed by a shard (hash of video_id mod --shards) and a `KeyedProcessFunction` buffers
status changes in keyed list state. It calls the item encoder when --batch-size changes are buffered or
--max-wait-ms after the first one, whichever comes first. Inference therefore runs on at most --batch-size
videos at a time (MiniLM: ~0.1-0.5 s for 32 on 2 cores), so a checkpoint barrier waits behind one bounded batch
at most; the buffer lives in Flink state, so a checkpoint taken between batches loses nothing.

Process mode (`python.execution-mode: process`): torch and the sentence model run in a separate Python worker,
not inside the TaskManager's JVM (thread mode, the cluster default).

Sinks: the embeddings topic (key video_id, single-object Avro VideoEmbedding; the index service reads it) and
`lake.embeddings.video_embeddings` (one row per emitted record, committed on checkpoints).

What the item tower is given: `fyp.index.catalogue.video_meta` of the hash, the one function the re-embedding
(`fyp index reembed`) calls too; a trained model reads its video id, author, sound and hashtags, the fields the
training table holds as well (`fyp.embeddings.inputs.item_inputs`). Every record is tagged with the encoder's
model (`VideoEmbedding.model`); the index service refuses other models' vectors.

Job arguments: --batch-size (32), --max-wait-ms (200), --shards (1), --model-source (default "local": the
trained two-tower model in $FYP_HOME, else the content projection; docs/EMBEDDINGS.md). With "local" the
encoder follows $FYP_HOME/models/two-tower/LATEST: at most every 10 s, before a batch, it checks whether a
retrain moved it and loads the new model (`FollowLatest`), so after `fyp train two-tower` new approvals are
embedded with the model `fyp index reembed` stages, without resubmitting the job.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import DataStream, KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor
from pyflink.table import StatementSet, StreamTableEnvironment
from pyflink.table.expressions import col

from connectors.iceberg_catalog import register_iceberg_catalog
from connectors.kafka_sink import kafka_raw_sink
from connectors.kafka_source import kafka_raw_source
from connectors.redis_video_store import RedisVideoStore
from fyp.config import Settings, load_settings
from fyp.pipelines import VIDEO_EMBEDDINGS_JOB as PIPELINE
from schemas import tables
from schemas.registry import default_registry
from schemas.topics import VIDEO_EMBEDDINGS, VIDEO_STATUS
from udfs.video_embedding import BatchPolicy, StatusChange, decode_status_change, embedding_record, plan_batch

__all__ = ["GROUP_ID", "JOB_NAME", "EmbedBatches", "FollowLatest", "build_video_embeddings", "embed",
           "embeddings_stream", "options_from_args"]

GROUP_ID = PIPELINE.group_id
JOB_NAME = PIPELINE.pipeline_name
STATE_NAME = "embedding-buffer-v1"
# Created (with its day partitioning) by connectors/iceberg_tables.py in the tools environment, like the history.
CHANGE_TYPE = Types.ROW_NAMED(["video_id", "author_id", "status", "event_time_ms"],
                              [Types.STRING(), Types.STRING(), Types.STRING(), Types.LONG()])
OUTPUT_TYPE = Types.ROW_NAMED(
    ["video_id", "author_id", "model", "vector", "deleted", "event_time_ms", "record_key", "payload"],
    [Types.STRING(), Types.STRING(), Types.STRING(), Types.BASIC_ARRAY(Types.FLOAT()), Types.BOOLEAN(),
     Types.LONG(), Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.PRIMITIVE_ARRAY(Types.BYTE())],
)
log = logging.getLogger("fyp.video_embeddings")


class EmbedBatches(KeyedProcessFunction):
    """Buffers status changes per shard and embeds them a bounded batch at a time.

    encoder_factory() -> an item encoder (`.name`, `.encode(list[VideoMeta]) -> (n, 64) float32`, see
    docs/EMBEDDINGS.md);
    store_factory() -> a `RedisVideoStore` (or a fake with `.read_many`).
    """

    def __init__(self, policy: BatchPolicy, encoder_factory, store_factory) -> None:
        self.policy = policy
        self.encoder_factory = encoder_factory
        self.store_factory = store_factory

    def open(self, runtime_context: RuntimeContext) -> None:
        self.buffer = runtime_context.get_list_state(ListStateDescriptor(STATE_NAME, Types.STRING()))
        self.timer = runtime_context.get_state(ValueStateDescriptor(f"{STATE_NAME}-timer", Types.LONG()))
        self.encoder = self.encoder_factory()
        # Load the sentence model now, not on the first approved video (seconds to minutes on a busy machine).
        self.encoder.encode([_warm_up_video()])
        self.store = self.store_factory()
        self.registry = default_registry()
        group = runtime_context.get_metrics_group()
        self.embedded = group.counter("fyp_embeddings_upserts_total")
        self.deleted = group.counter("fyp_embeddings_deletes_total")
        self.batches = group.counter("fyp_embeddings_batches_total")

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context):
        self.buffer.add(json.dumps([value[0], value[1], value[2], value[3]]))
        if sum(1 for _ in self.buffer.get()) >= self.policy.max_items:
            yield from self._flush()
        elif self.timer.value() is None:
            at = ctx.timer_service().current_processing_time() + self.policy.max_wait_ms
            ctx.timer_service().register_processing_time_timer(at)
            self.timer.update(at)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        yield from self._flush()

    def _flush(self):
        changes = [StatusChange.from_row(json.loads(text)) for text in self.buffer.get()]
        self.buffer.clear()
        self.timer.clear()  # a timer that fires on an empty buffer does nothing
        if not changes:
            return
        self.batches.inc()
        for row in embed(changes, self.encoder, self.store, self.registry):
            (self.deleted if row[4] else self.embedded).inc()
            yield row


def embed(changes: list[StatusChange], encoder, store, registry) -> list[Row]:
    """One batch: read the hashes, plan, encode the upserts in one call, build the output rows (tagged with the
    encoder's model as it is after the call: a `FollowLatest` may have moved to a new model)."""
    from fyp.index.catalogue import video_meta

    hashes = store.read_many([c.video_id for c in changes])
    planned = plan_batch(changes, hashes)
    upserts = [p for p in planned if p.action == "upsert"]
    vectors = encoder.encode([video_meta(p.fields) for p in upserts]) if upserts else []
    by_id = {p.video_id: [float(x) for x in v] for p, v in zip(upserts, vectors, strict=True)}
    store.record_searchable([(p.video_id, p.author_id, p.event_time_ms, p.action == "upsert") for p in planned])
    rows = []
    for item in planned:
        record = embedding_record(item, model=encoder.name, vector=by_id.get(item.video_id))
        payload = registry.encode("VideoEmbedding", record)
        rows.append(Row(item.video_id, item.author_id, encoder.name, record["vector"], record["deleted"],
                        item.event_time_ms, item.video_id.encode(), payload))
    return rows


def _warm_up_video():
    from fyp.embeddings.meta import VideoMeta

    return VideoMeta(video_id="warm-up", caption="warm up", hashtags=("warmup",))


def _shard(video_id: str, shards: int) -> int:
    return zlib.crc32(video_id.encode()) % shards


def _to_change(row: Row) -> Row:
    change = decode_status_change(bytes(row[0]))
    return Row(*change.to_row()) if change else Row("", "", "", 0)


def embeddings_stream(payloads: DataStream, *, policy: BatchPolicy, shards: int, encoder_factory,
                      store_factory) -> DataStream:
    """Raw status payload rows (one BYTES field) -> OUTPUT_TYPE rows, batched per shard."""
    changes = payloads.map(_to_change, output_type=CHANGE_TYPE).filter(lambda c: c[0] != "")
    return (changes.key_by(lambda c: _shard(c[0], shards), key_type=Types.INT())
            .process(EmbedBatches(policy, encoder_factory, store_factory), output_type=OUTPUT_TYPE)
            .name("embed-batches").set_parallelism(shards))  # one encoder (and its memory) per shard, no idle ones


def build_video_embeddings(env: StreamExecutionEnvironment, settings: Settings, *, policy: BatchPolicy = BatchPolicy(),
                           shards: int = 1, encoder_factory=None) -> StatementSet:
    t_env = StreamTableEnvironment.create(env)
    t_env.get_config().set("python.execution-mode", "process")
    # A Python bundle is flushed after 1 s by default: two Python operators made that ~4 s of an approval's
    # way to the index (measured: `fyp bench index --engines none`). Status changes are few; flush fast.
    t_env.get_config().set("python.fn-execution.bundle.time", "50")

    # Source: the status topic's payloads.
    t_env.create_temporary_table("status_raw", kafka_raw_source(settings, topic=VIDEO_STATUS.name, group_id=GROUP_ID))
    payloads = t_env.to_data_stream(t_env.from_path("status_raw").select(col("payload")))

    # Transforms: decode, keep the changes that ask for an action, batch per shard and embed.
    rows = t_env.from_data_stream(embeddings_stream(
        payloads, policy=policy, shards=shards, encoder_factory=encoder_factory or default_encoder_factory(),
        store_factory=lambda: RedisVideoStore.from_settings(settings)))

    # Sinks: the compacted embeddings topic and the Iceberg table.
    statements = t_env.create_statement_set()
    t_env.create_temporary_table("embeddings_out", kafka_raw_sink(settings, topic=VIDEO_EMBEDDINGS.name))
    statements.add_insert("embeddings_out", rows.select(col("record_key"), col("payload")))
    catalog = register_iceberg_catalog(t_env, settings)
    t_env.create_temporary_view("embedded", rows)
    statements.add_insert_sql(
        f"INSERT INTO `{catalog}`.{tables.VIDEO_EMBEDDINGS} "
        "SELECT video_id, author_id, model, vector, deleted, TO_TIMESTAMP_LTZ(event_time_ms, 3) FROM embedded")
    statements.attach_as_datastream()
    return statements


class FollowLatest:
    """An item encoder that follows $FYP_HOME/models/two-tower/LATEST: before an `encode`, at most every
    `every_s` seconds, it reads LATEST (a few bytes) and, when a retrain moved it, loads the new model.

    load() -> an item encoder (`.name`, `.encode`); home: $FYP_HOME.
    """

    def __init__(self, load: Callable[[], Any], home: Path, *, every_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from fyp.embeddings.store import latest_local_version

        self._load, self._home, self._every_s, self._clock = load, home, every_s, clock
        self._latest = latest_local_version
        self.version = self._latest(home)
        self.encoder = load()
        self._checked = clock()

    @property
    def name(self) -> str:
        return self.encoder.name

    def encode(self, videos):
        now = self._clock()
        if now - self._checked >= self._every_s:
            self._checked = now
            version = self._latest(self._home)
            if version != self.version:
                previous = self.encoder.name
                self.encoder, self.version = self._load(), version
                log.info("LATEST moved: item encoder %s replaces %s", self.encoder.name, previous)
        return self.encoder.encode(videos)


def default_encoder_factory(source: str = "local"):
    """A factory (pickled with the job, called in the TaskManager) for the item encoder.

    source: `fyp.embeddings.load_model`'s: "local" (default: $FYP_HOME/models/two-tower/LATEST, else the
    content projection, followed as it moves: `FollowLatest`), "projection", or a model.pt path. Not "s3": the
    Flink environment has no S3 client. `fyp worker user-embeddings` follows the model the index serves.
    """

    def load():
        from fyp.embeddings import ItemEncoder

        encoder = ItemEncoder.load(source)
        log.info("item encoder %s (trained: %s)", encoder.name, encoder.trained)
        return encoder

    if source != "local":
        return load

    def follow():
        return FollowLatest(load, load_settings().home)

    return follow


def options_from_args(argv: list[str] | None = None) -> tuple[BatchPolicy, int, str]:
    parser = argparse.ArgumentParser(prog="video_embeddings")
    parser.add_argument("--batch-size", type=int, default=32, help="videos per model call")
    parser.add_argument("--max-wait-ms", type=int, default=200, help="longest wait for a batch to fill")
    parser.add_argument("--shards", type=int, default=1, help="batching keys (one batch in flight per key)")
    parser.add_argument("--model-source", default="local", help="local, projection, or a model.pt path")
    args, _ = parser.parse_known_args(argv)
    policy = BatchPolicy(max_items=args.batch_size, max_wait=timedelta(milliseconds=args.max_wait_ms))
    return policy, args.shards, args.model_source


if __name__ == "__main__":
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_max_parallelism(PIPELINE.max_parallelism)  # fixed key groups, so that it can rescale
    policy, shards, source = options_from_args()
    build_video_embeddings(env, load_settings(), policy=policy, shards=shards,
                           encoder_factory=default_encoder_factory(source))
    env.execute(JOB_NAME)
