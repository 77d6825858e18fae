"""Engagement features: Kafka engagement events -> windowed features and serving sets in Redis.

Source: fyp.engagement.v1 (raw single-object Avro). Steps: decode (Java DECODE_ENGAGEMENT_ROWS, once per event),
route malformed records to the dead-letter topic, keep the first of each event_id (the Java KeepFirst step, in arrival
order), then one GROUP BY per declared feature set (features/) using the Java
window aggregates; the sets of one key family (user with user x author and user x hashtag; video; author;
sound) go through one Java keyed operator per family instead (featurespec/families.py). Sinks: the Java Redis
writer (absolute values, never increments) and the DLQ topic.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Literal

from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import EnvironmentSettings, StatementSet, StreamTableEnvironment, TableEnvironment

from connectors.job_options import JobOptions, parse_job_options
from connectors.kafka_sink import kafka_raw_sink
from connectors.kafka_source import kafka_raw_source
from connectors.redis_feature_sink import redis_feature_sink, redis_sorted_set_sink
from features import ALL_FEATURE_SETS, ALLOWED_LATENESS, DEDUP_HORIZON
from features.serving_sets import SERVING_SETS
from featurespec import FeatureSet
from featurespec.families import families, family_input_query, family_output_query, family_spec
from featurespec.sql import (
    JAVA_AGGREGATES,
    derived_failure_checks,
    derived_sources,
    feature_query,
    sorted_set_query,
    source_columns,
)
from fyp.config import Settings, load_settings
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB as PIPELINE
from schemas.topics import ENGAGEMENT, ENGAGEMENT_DLQ
from udfs.envelope import ENGAGEMENT_COLUMNS
from udfs.flink_families import family_view, keep_first_view, shared_view
from udfs.flink_functions import (
    LATE,
    SCALAR_FUNCTIONS,
    decode_engagement,
    encode_dead_letter,
    register_java_decoder,
)

__all__ = ["JOB_CONFIG", "SINK_FLUSH_MS", "build_engagement_features", "derived_failure_rows", "derived_views",
           "engagement_views", "job_config", "sharing", "streaming_environment"]

GROUP_ID = PIPELINE.group_id
# ALLOWED_LATENESS: further behind than this, counted (fyp_late_events_total), not featured.
# DEDUP_HORIZON: an event_id seen again within this is dropped. Both live in features/ for `fyp verify`.

# How long the Redis writers gather rows before a pipelined write. Rows come in bursts, one per mini-batch, so a
# short interval costs few extra writes; it adds up to this much to every feature's freshness (50 ms before).
SINK_FLUSH_MS = 10

# Mini-batches bound both the Redis write rate per key and the added latency (allow-latency, set with the
# network buffer timeout from the job's options by `job_config`: the two trade freshness against CPU).
_BASE_CONFIG = {
    **PIPELINE.flink_config(),  # its name, and pipeline.max-parallelism so that it can rescale
    "table.exec.mini-batch.enabled": "true",
    "table.exec.mini-batch.size": "5000",
    "table.optimizer.agg-phase-strategy": "TWO_PHASE",
    # The job-wide TTL bounds the SQL deduplication's state (--per-set-sql; the Java one is given the horizon);
    # feature aggregates set their own (STATE_TTL hints).
    "table.exec.state.ttl": f"{int(DEDUP_HORIZON.total_seconds())} s",
    # No deep copy of each row for every chained branch (11 aggregation branches per event): ~28 % less
    # TaskManager CPU per event (docs/PERFORMANCE.md). Safe here: the SQL operators copy what they buffer, the
    # Java decoder returns a fresh row per call and the Redis writer encodes each row to bytes at once.
    "pipeline.object-reuse": "true",
    # Every sink here gets rows keyed as it is: an aggregate's on its own group key, or the per-event rows of
    # recent-seen, which the sink applies with ZADD GT in any order. So no sink needs Flink's upsert
    # materializer, which would otherwise keep one state entry per (user, video) for recent-seen.
    "table.exec.sink.upsert-materialize": "NONE",
    # RocksDB memory of this job's slots, fixed rather than the slot's share of managed memory (~126 MB once the
    # Python functions take theirs): below ~200 MB its ~12 state instances flush and compact so often that the
    # TaskManager spends ~1.6x the CPU per event (docs/PERFORMANCE.md, "RocksDB memory").
    "state.backend.rocksdb.memory.fixed-per-slot": "256 mb",
    # Most reads are of keys not stored yet (each event_id, a new user x hashtag pair): a Bloom filter answers
    # those without reading SST blocks. Uncompressed blocks trade disk for ~20 % less TaskManager CPU per event.
    "state.backend.rocksdb.use-bloom-filter": "true",
    "state.backend.rocksdb.compression.per.level": "NO_COMPRESSION",
}


def job_config(options: JobOptions | None = None) -> dict[str, str]:
    """The job's Flink settings with the freshness knobs of `options` (JobOptions.mini_batch_ms,
    buffer_timeout_ms; their defaults without)."""
    options = options or JobOptions()
    return {**_BASE_CONFIG, "table.exec.mini-batch.allow-latency": f"{options.mini_batch_ms} ms",
            "execution.buffer-timeout.interval": f"{options.buffer_timeout_ms} ms"}


JOB_CONFIG = job_config()


def engagement_views(
    t_env: TableEnvironment, raw_table: str, *, allowed_lateness: timedelta = ALLOWED_LATENESS,
    decoder: Literal["java", "python"] = "java", columns: Sequence[str] | None = None,
    passthrough: Sequence[str] = (), shared: bool = False,
) -> None:
    """Views over a raw payload table (payload, kafka_partition, kafka_offset, proc_time): `decoded` (every
    record as flat engagement columns, `error` set for bad or late ones) and `engagement` (good, on-time rows, the
    first of each event_id within the dedup horizon).

    decoder: "java" (DECODE_ENGAGEMENT, udfs/java/envelope: no Python per event) or "python" (the reference,
    udfs/envelope.py); both give the same rows (tests/flink/test_decoder_agreement.py).
    columns: the engagement-row columns `engagement` keeps (default: all); the job keeps those its sets read
    (`featurespec.sql.source_columns`), so no unread column is shipped through the deduplication.
    passthrough: more raw-table columns `decoded` carries (the job's record key and headers, for dead letters).
    shared: both views are computed once and shared by every later translation (`udfs.flink_families.shared_view`;
    needs a StreamTableEnvironment): the key-family conversions would otherwise each re-read the source."""
    t_env.create_temporary_function("decode_engagement", decode_engagement)
    t_env.create_temporary_function("encode_dead_letter", encode_dead_letter)
    for name, java_class in JAVA_AGGREGATES.items():
        t_env.execute_sql(f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS '{java_class}' LANGUAGE JAVA")
    lateness_ms = int(allowed_lateness.total_seconds() * 1000)
    arguments = f"payload, CAST({lateness_ms} AS BIGINT), kafka_partition"
    kept = f"payload, kafka_partition, kafka_offset, {''.join(f'{c}, ' for c in passthrough)}proc_time"
    fields = (*ENGAGEMENT_COLUMNS, "error")
    # Flat columns, so that no later step reads a nested row: a step that reads fields of one copies all of it
    # first, for every event, and once the planner merges projections it calls a scalar decoder once per field it
    # reads; the Java table function runs once per record (docs/PERFORMANCE.md, "The decoded row, flat"). The
    # Python decoder runs in its own step, which the planner does not merge.
    if decoder == "java":
        decoded = t_env.sql_query(
            f"SELECT {', '.join(f'd.`{name}` AS `{name}`' for name in fields)}, {kept} FROM `{raw_table}`, "
            f"LATERAL TABLE({register_java_decoder(t_env, rows=True)}({arguments})) AS d")
    else:
        decoded = t_env.sql_query(
            f"SELECT {', '.join(f'e.`{name}` AS `{name}`' for name in fields)}, {kept} FROM ("
            f"SELECT decode_engagement({arguments}) AS e, {kept} FROM `{raw_table}`)")
    if shared:
        shared_view(t_env, "decoded", decoded, proc_time="proc_time")
    else:
        t_env.create_temporary_view("decoded", decoded)
    names = ", ".join(f"`{name}`" for name in ENGAGEMENT_COLUMNS if columns is None or name in columns)
    # Keep-first deduplication on event_id within the dedup horizon (processing time). The job's path (shared) runs
    # it as a Java step that keeps each partition's order (udfs.flink_families.keep_first_view, issue #17); the
    # per-set SQL path as SQL, its state living for the job-wide TTL. Same rule, same rows
    # (tests/flink/test_families.py::test_the_java_deduplication_keeps_the_rows_the_sql_one_keeps).
    if shared:
        keep_first_view(t_env, "engagement", t_env.sql_query(f"SELECT {names} FROM decoded WHERE error IS NULL"),
                        key="event_id", ttl_ms=int(DEDUP_HORIZON.total_seconds() * 1000))
    else:
        t_env.create_temporary_view("engagement", t_env.sql_query(
            f"SELECT {names} FROM ("
            "SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time) AS n "
            f"FROM (SELECT {names}, proc_time FROM decoded WHERE error IS NULL)) WHERE n = 1"))


def derived_failure_rows(feature_sets: Sequence[FeatureSet], passthrough: Sequence[str] = (),
                         guarded: Iterable[str] = tuple(SCALAR_FUNCTIONS),
                         share: Callable[[str, str], str] | None = None) -> list[str]:
    """SELECTs over `decoded` (engagement_views) of the good rows whose guarded derived function failed or ran
    over budget (udfs/guard.py), with `kafka_partition, kafka_offset, payload, *passthrough, reason`: the job
    dead-letters them, and the feature sets leave them out (their derived value is NULL).

    guarded: SQL names of the guarded functions (default: the job's SCALAR_FUNCTIONS).
    share: registers (view name, SELECT) as a view the planner cannot see through and returns its name. Given,
    each check's filtered rows go through it, so the failure function runs on those rows only; without it the
    planner computes the function on every decoded row (featurespec.sql.feature_query says why)."""
    flat = ", ".join(f"`{name}`" for name in ENGAGEMENT_COLUMNS)
    kept = ", ".join(("kafka_partition", "kafka_offset", "payload", *passthrough))
    selects = []
    for i, (where, failure) in enumerate(derived_failure_checks(feature_sets, guarded)):
        rows = f"SELECT * FROM (SELECT {flat}, {kept} FROM decoded WHERE error IS NULL) WHERE {where}"
        if share is not None:
            rows = f"SELECT * FROM `{share(f'derived_check_{i}', rows)}`"
        selects.append(f"SELECT {kept}, reason FROM (SELECT {kept}, {failure} AS reason FROM ({rows})) "
                       "WHERE reason IS NOT NULL")
    return selects


def sharing(t_env: StreamTableEnvironment) -> Callable[[str, str], str]:
    """`share` for `derived_failure_rows`: registers a SELECT as a shared view and returns the view's name."""
    def share(view: str, select: str) -> str:
        shared_view(t_env, view, t_env.sql_query(select))
        return view
    return share


def derived_views(t_env: StreamTableEnvironment, feature_sets: Sequence[FeatureSet]) -> dict[str, str]:
    """Register the rows of each set with derived columns, filtered by its `where`, as a shared view over
    `engagement` (featurespec.sql.derived_sources), so that only those rows reach the derived columns'
    functions; returns {set's qualified name: view} for `feature_query`'s `source`."""
    by_set: dict[str, str] = {}
    for view, select, readers in derived_sources(feature_sets):
        shared_view(t_env, view, t_env.sql_query(select))  # over `engagement`, insert-only (keep_first_view)
        by_set.update(dict.fromkeys(readers, view))
    return by_set


def build_engagement_features(
    t_env: StreamTableEnvironment, settings: Settings, *, feature_sets: tuple[FeatureSet, ...] = ALL_FEATURE_SETS,
    options: JobOptions | None = None,
) -> StatementSet:
    # Source: raw payloads with their Kafka coordinates.
    t_env.create_temporary_table("engagement_raw", kafka_raw_source(
        settings, topic=ENGAGEMENT.name, group_id=GROUP_ID, options=options, with_key=True))

    # Steps: decode once; good rows feed every feature set, bad rows become dead letters.
    serving_sets = SERVING_SETS
    if options and options.only_feature_sets:
        feature_sets = tuple(fs for fs in feature_sets if fs.name in options.only_feature_sets)
        serving_sets = ()
    use_families = not (options and options.per_set_sql) and bool(families(feature_sets))
    engagement_views(t_env, "engagement_raw", columns=source_columns(feature_sets, serving_sets),
                     passthrough=("kafka_key", "kafka_headers"), shared=use_families)
    for name, function in SCALAR_FUNCTIONS.items():  # for derived columns; only their sets' rows reach them
        t_env.create_temporary_system_function(name, function)

    # A key family's sets share one keyed Java operator (one shuffled row per event for the family); the other
    # sets (derived columns, few keys) and every set with --per-set-sql run their own GROUP BY.
    by_family: dict[str, str] = {}
    if use_families:
        for family in families(feature_sets):
            view = family_view(t_env, f"family_{family.name}", family_input_query(family), family_spec(family),
                               bundle_ms=(options or JobOptions()).mini_batch_ms)
            by_family.update({fs.qualified_name: family_output_query(family, fs, view) for fs in family.sets})

    # Sets with derived columns read their rows through a shared view of their filter: only those rows reach the
    # derived column's Python function (featurespec.sql.derived_sources). On --per-set-sql every row does.
    derived_source = derived_views(t_env, feature_sets) if use_families else {}

    # Sinks: one Redis table per feature set, and the dead-letter topic.
    statements = t_env.create_statement_set()
    for feature_set in feature_sets:
        sink = f"redis_{feature_set.name}_v{feature_set.version}"  # two versions may be computed side by side
        t_env.create_temporary_table(sink, redis_feature_sink(settings, feature_set, flush_interval_ms=SINK_FLUSH_MS))
        query = by_family.get(feature_set.qualified_name) or feature_query(
            feature_set, source=derived_source.get(feature_set.qualified_name, "engagement"))
        statements.add_insert_sql(f"INSERT INTO {sink} {query}")
    for spec in serving_sets:
        sink = f"redis_{spec.name}"
        t_env.create_temporary_table(sink, redis_sorted_set_sink(
            settings, key_prefix=spec.key_prefix, key_columns=spec.key_columns, member_column=spec.member_column,
            score_column="score", max_size=spec.max_size, ttl=spec.ttl, greater_only=spec.per_event,
            flush_interval_ms=SINK_FLUSH_MS))
        statements.add_insert_sql(f"INSERT INTO {sink} {sorted_set_query(spec)}")
    # A dead letter keeps the original key (as the record key and in DeadLetter.key) and headers, so that
    # `fyp dlq replay` sends it back to the same partition with what the client attached.
    t_env.create_temporary_table("dead_letters", kafka_raw_sink(
        settings, topic=ENGAGEMENT_DLQ.name, with_headers=True, max_request_bytes=ENGAGEMENT_DLQ.max_message_bytes))
    rejected = ("SELECT kafka_key, kafka_partition, kafka_offset, payload, kafka_headers, error AS reason "
                f"FROM decoded WHERE error IS NOT NULL AND error <> '{LATE}'")
    # A record on which a derived column's Python function failed, or ran over budget, is a dead letter too.
    for rows in (rejected, *derived_failure_rows(feature_sets, passthrough=("kafka_key", "kafka_headers"),
                                                 share=sharing(t_env) if use_families else None)):
        statements.add_insert_sql(
            "INSERT INTO dead_letters SELECT kafka_key, "
            f"encode_dead_letter('{ENGAGEMENT.name}', kafka_partition, kafka_offset, reason, payload, kafka_key), "
            f"kafka_headers FROM ({rows})")
    return statements


def streaming_environment(config: dict[str, str] = JOB_CONFIG) -> tuple[StreamExecutionEnvironment,
                                                                        StreamTableEnvironment]:
    """A table environment over a DataStream environment (the family operators are DataStream steps), with
    `config` set on both: the job runs through the DataStream environment (`env.execute`), which does not read
    the table config, so without it object reuse and the RocksDB settings would silently not apply."""
    configuration = Configuration()
    for key, value in config.items():
        configuration.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(configuration)
    t_env = StreamTableEnvironment.create(env, EnvironmentSettings.in_streaming_mode())
    for key, value in config.items():
        t_env.get_config().set(key, value)
    return env, t_env


if __name__ == "__main__":
    job_options = parse_job_options(sys.argv[1:])
    env, t_env = streaming_environment(job_config(job_options))
    statements = build_engagement_features(t_env, load_settings(), options=job_options)
    # The INSERTs join the DataStream steps (the family operators) in one job, run under the job's name.
    statements.attach_as_datastream()
    env.execute(PIPELINE.pipeline_name)
