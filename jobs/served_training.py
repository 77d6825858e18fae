"""Served training rows: what serving read for each logged request, joined with what the viewer did next.

Python per record: the ServedFeatures record is decoded by a Python table function (`ServedCandidates`, below,
wrapping fyp.serving.served_log.ServedRows): no Java decoder reads it yet, and served logging is sampled (1 % of
ranking requests by default, FYP_SERVED_LOG_SAMPLE_RATE), so this runs once per logged request, never per
engagement event. Engagement events are decoded in Java (DECODE_ENGAGEMENT), as the history job does.

Sources: fyp.served-features.v1 and fyp.engagement.v1, each with a watermark WATERMARK_DELAY behind its newest
Kafka timestamp (the served time, which the logger sets; the event time, where the producer sets it, else the
time it was produced). Flags: `--group-id` (connectors/job_options.py) and `--start-from`.
Steps, per declared training set (training/):
1. one row per served candidate (request_id, served_time, user, video, position, the served user and video
   values, their event-time headers);
2. engagement events that match any label's `where` (Flink SQL over engagement-row columns, used as written);
3. an interval join of the two on (user_id, video_id): each label is true when a matching event has an event time
   in [served_time, served_time + within) (decoded event times; the Kafka timestamps only bound the join,
   CLOCK_SKEW wider, as they may differ from the event time a little);
4. the candidates and their matches, unioned and aggregated per candidate in a 1 s tumbling window on
   served_time: one append-only row per candidate, emitted once the watermark has passed served_time + the
   label horizon + CLOCK_SKEW (the join holds the watermark back by its interval), so every label is final.
   (A LEFT interval join would emit the unmatched candidates only at its state clean-up, after the window on
   served_time had fired, and the window would drop them as late.)
Sink: Iceberg `training.served_<name>`, created here if missing (partitioned by day(served_time)), committed on
each checkpoint: exactly once, as the history job.

Labels keyed by anything but (user_id, video_id) are refused: a served row knows its user and candidates only.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import get_args

from py4j.protocol import Py4JJavaError
from pyflink.java_gateway import get_gateway
from pyflink.table import DataTypes, EnvironmentSettings, StatementSet, Table, TableEnvironment
from pyflink.table.udf import FunctionContext, TableFunction, udtf

from connectors.iceberg_catalog import register_iceberg_catalog
from connectors.job_options import JobOptions, parse_job_options
from connectors.kafka_source import StartFrom, kafka_raw_source
from features import ALLOWED_LATENESS
from featurespec import FeatureSet
from featurespec.training import TrainingSet, feature_column
from fyp.config import Settings, load_settings
from fyp.pipelines import SERVED_TRAINING_JOB as PIPELINE
from fyp.serving.layout import ReadPlan
from fyp.serving.served_log import ServedRows, served_columns
from schemas.registry import UndecodableEvent
from schemas.topics import ENGAGEMENT, SERVED_FEATURES
from training import TRAINING_SETS
from udfs.envelope import ENGAGEMENT_COLUMNS
from udfs.flink_functions import register_java_decoder

__all__ = ["CLOCK_SKEW", "JOB_CONFIG", "WATERMARK_DELAY", "build_served_training", "served_training_views"]

WATERMARK_DELAY = timedelta(seconds=5)  # Kafka timestamps of one partition may be this much out of order
CLOCK_SKEW = ALLOWED_LATENESS  # an event's Kafka timestamp may be this far from its event time and still count
LABEL_KEYS = ("user_id", "video_id")

JOB_CONFIG = {
    **PIPELINE.flink_config(),  # its name, and pipeline.max-parallelism so that it can rescale
    # No parallelism here: set in the program it would override `flink run -p` and `fyp rescale`. One slot is the
    # catalogue's default (fyp/pipelines.py): served logging is sampled, and the engagement side is decoded in
    # Java and filtered to label events at once.
    # Process mode for the table function, the mode the job-builder tests run (tests/flink): its rows hold NULL
    # FLOATs and BIGINTs, and thread mode's converter is known to fail on a null INT (udfs/envelope.py). It runs
    # once per logged request, so process mode's cost per call does not matter here.
    "python.execution-mode": "process",
    # No local pre-aggregation: a local window aggregate holds rows until its watermark or a checkpoint, and while
    # its inputs are idle its channel stops holding the global window back, which could then fire before those
    # rows arrive and drop them as late. Sampled rows need no pre-aggregation.
    "table.optimizer.agg-phase-strategy": "ONE_PHASE",
}


class ServedCandidates(TableFunction):
    """SERVED_CANDIDATES(payload): one row per candidate of a ServedFeatures record (`ServedRows`); counts
    undecodable records and records of another set version in `fyp_served_undecodable_total` and
    `fyp_served_set_mismatches_total`."""

    def __init__(self, user_set: FeatureSet, video_set: FeatureSet) -> None:
        self.user_set, self.video_set = user_set, video_set

    def open(self, function_context: FunctionContext) -> None:
        self.rows = ServedRows(self.user_set, self.video_set)
        group = function_context.get_metric_group()
        self.undecodable = group.counter("fyp_served_undecodable_total")
        self.mismatches = group.counter("fyp_served_set_mismatches_total")

    def eval(self, payload: bytes):
        before = self.rows.set_mismatches
        try:
            rows = self.rows(payload)
        except UndecodableEvent:
            self.undecodable.inc()
            return
        if self.rows.set_mismatches > before:
            self.mismatches.inc(self.rows.set_mismatches - before)
        yield from rows


def _interval(delta: timedelta) -> str:
    """A SQL interval literal; DAY TO SECOND, as a SECOND literal takes at most 3 digits in Flink.

    >>> _interval(timedelta(minutes=12, milliseconds=5))
    "INTERVAL '0 00:12:00.005' DAY TO SECOND(3)"
    """
    ms = round(delta.total_seconds() * 1000)
    days, ms = divmod(ms, 86_400_000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{ms // 1000:02d}.{ms % 1000:03d}' DAY TO SECOND(3)"


def _entity_sets(training_set: TrainingSet) -> tuple[FeatureSet, FeatureSet]:
    """The training set's user and video main sets (the served ones), or a ValueError naming what is missing."""
    by_entity = {fs.entity.name: fs for fs in training_set.feature_sets}
    missing = [entity for entity in ("user", "video") if entity not in by_entity]
    if missing:
        raise ValueError(f"{training_set.qualified_name}: served rows need a {' and a '.join(missing)} feature set")
    unsupported = [label.name for label in training_set.labels if set(label.keys) != set(LABEL_KEYS)]
    if unsupported:
        raise ValueError(f"{training_set.qualified_name}: labels {unsupported} are not keyed by (user_id, video_id); "
                         "a served row knows its user and candidates only, so the served join cannot label them")
    return by_entity["user"], by_entity["video"]


def served_training_views(t_env: TableEnvironment, served_raw: str, engagement_raw: str,
                          training_set: TrainingSet) -> str:
    """Views over two raw tables (payload, kafka_time with a watermark) ending in `served_<name>_rows`: the
    served table's rows, one per candidate. Returns that view's name."""
    user_set, video_set = _entity_sets(training_set)
    name, labels = training_set.name, training_set.labels
    horizon = training_set.label_horizon
    features = [feature_column(fs, c) for fs in (user_set, video_set) for c in served_columns(ReadPlan.of(fs))]
    times = [feature_column(user_set, "event_time_ms"), feature_column(video_set, "event_time_ms")]
    head = ["request_id", "served_time_ms", "user_id", "video_id", "position"]
    types = [DataTypes.STRING(), DataTypes.BIGINT(), DataTypes.STRING(), DataTypes.STRING(), DataTypes.INT(),
             DataTypes.BIGINT(), DataTypes.BIGINT()] + [DataTypes.FLOAT()] * len(features)
    function = f"SERVED_CANDIDATES_{name.upper()}"
    t_env.create_temporary_function(function, udtf(ServedCandidates(user_set, video_set), result_types=types))
    quoted = ", ".join(f"`{c}`" for c in [*head, *times, *features])

    # 1. One row per served candidate; served_time stays the source's time attribute (the Kafka timestamp, which
    #    the logger sets to the served time).
    t_env.create_temporary_view(f"served_{name}_candidates", t_env.sql_query(
        f"SELECT c.*, s.kafka_time AS served_time FROM `{served_raw}` AS s, "
        f"LATERAL TABLE({function}(s.payload)) AS c({quoted})"))

    # 2. Engagement events that could make a label true, with a flag per label.
    decoder = register_java_decoder(t_env)
    flat = ", ".join(f"e.`{c}` AS `{c}`" for c in ENGAGEMENT_COLUMNS)
    flags = ", ".join(f"COALESCE(({label.where}), FALSE) AS `{label.column}`" for label in labels)
    t_env.create_temporary_view(f"served_{name}_label_events", t_env.sql_query(
        f"SELECT user_id, video_id, event_time, kafka_time, {flags} FROM ("
        f"SELECT {flat}, kafka_time FROM (SELECT {decoder}(payload) AS e, kafka_time FROM `{engagement_raw}`) "
        f"WHERE e.error IS NULL) WHERE {' OR '.join(f'({label.where})' for label in labels)}"))

    # 3. Each candidate with each matching event; a label's own window may be shorter than the horizon.
    within = ", ".join(
        f"(e.`{label.column}` AND e.event_time < s.served_time_ms + {int(label.within.total_seconds() * 1000)}) "
        f"AS `{label.column}`" for label in labels)
    t_env.create_temporary_view(f"served_{name}_matches", t_env.sql_query(
        f"SELECT s.request_id, s.served_time_ms, s.user_id, s.video_id, s.served_time, {within} "
        f"FROM served_{name}_candidates AS s JOIN served_{name}_label_events AS e "
        "ON s.user_id = e.user_id AND s.video_id = e.video_id "
        f"AND e.kafka_time BETWEEN s.served_time - {_interval(CLOCK_SKEW)} "
        f"AND s.served_time + {_interval(horizon + CLOCK_SKEW)} "
        f"WHERE e.event_time >= s.served_time_ms AND e.event_time < s.served_time_ms + "
        f"{int(horizon.total_seconds() * 1000)}"))

    # 4. Candidates and matches together, one row per candidate once its window closes.
    nulls = ", ".join(f"CAST(NULL AS FLOAT) AS `{c}`" for c in features)
    no_labels = ", ".join(f"CAST(NULL AS BOOLEAN) AS `{label.column}`" for label in labels)
    label_names = ", ".join(f"`{label.column}`" for label in labels)
    keys = "request_id, served_time, served_time_ms, user_id, video_id"
    t_env.create_temporary_view(f"served_{name}_labelled", t_env.sql_query(
        f"SELECT {keys}, `position`, {', '.join(f'`{c}`' for c in [*times, *features])}, {no_labels} "
        f"FROM served_{name}_candidates UNION ALL "
        f"SELECT {keys}, CAST(NULL AS INT) AS `position`, CAST(NULL AS BIGINT) AS `{times[0]}`, "
        f"CAST(NULL AS BIGINT) AS `{times[1]}`, {nulls}, {label_names} FROM served_{name}_matches"))
    values = ", ".join(f"MAX(`{c}`) AS `{c}`" for c in [*features, *times])
    outcomes = ", ".join(f"COALESCE(MAX(`{label.column}`), FALSE) AS `{label.column}`" for label in labels)
    rows = f"served_{name}_rows"
    t_env.create_temporary_view(rows, t_env.sql_query(
        "SELECT request_id, TO_TIMESTAMP_LTZ(served_time_ms, 3) AS served_time, user_id, video_id, "
        f"MIN(`position`) AS `position`, {values}, {outcomes} "
        f"FROM TABLE(TUMBLE(TABLE served_{name}_labelled, DESCRIPTOR(served_time), INTERVAL '1' SECOND)) "
        "GROUP BY window_start, window_end, request_id, served_time_ms, user_id, video_id"))
    return rows


def ensure_served_table(t_env: TableEnvironment, catalog: str, training_set: TrainingSet, rows: Table) -> str:
    """Create `training.served_<name>` with the rows' columns, partitioned by day(served_time), if missing; a
    ValueError if it exists with other columns (a changed declaration needs its own table). Flink's Iceberg DDL
    cannot declare a day() partition, so Iceberg's own catalog API creates it (through the Flink catalog)."""
    namespace, table = training_set.served_table.split(".")
    t_env.execute_sql(f"CREATE DATABASE IF NOT EXISTS `{catalog}`.`{namespace}`")
    jvm = get_gateway().jvm
    iceberg = t_env._j_tenv.getCatalog(catalog).get().catalog()
    identifier = jvm.org.apache.iceberg.catalog.TableIdentifier.parse(training_set.served_table)
    schema = jvm.org.apache.iceberg.flink.FlinkSchemaUtil.convert(rows._j_table.getResolvedSchema())
    wanted = [field.name() for field in schema.columns()]
    if not iceberg.tableExists(identifier):
        spec = jvm.org.apache.iceberg.PartitionSpec.builderFor(schema).day("served_time", "served_day").build()
        properties = jvm.java.util.HashMap()
        for key, value in {"format-version": "2", "write.parquet.compression-codec": "zstd",
                           "fyp.training_set": training_set.qualified_name}.items():
            properties.put(key, value)
        try:
            iceberg.createTable(identifier, schema, spec, properties)
        except Py4JJavaError as exc:  # created concurrently is fine; anything else is not
            if "AlreadyExists" not in str(exc.java_exception):
                raise
    have = [field.name() for field in iceberg.loadTable(identifier).schema().columns()]
    if have != wanted:
        raise ValueError(f"{training_set.served_table} has columns {have}, but {training_set.qualified_name} gives "
                         f"{wanted}: a changed declaration needs a new table (drop this one, or version the set)")
    return f"`{catalog}`.`{namespace}`.`{table}`"


def build_served_training(
    t_env: TableEnvironment, settings: Settings, *, training_sets: tuple[TrainingSet, ...] = TRAINING_SETS,
    options: JobOptions | None = None, start_from: StartFrom = "group-offsets",
) -> StatementSet:
    """start_from: where a consumer group without committed offsets starts (`--start-from`; default the
    group's offsets, from the earliest record for a new group). `latest-offset` with a new `--group-id` joins
    only what is logged from now on (tests/integration/test_zz_served_training.py: earlier runs' records, whose
    Kafka timestamps may lie ahead, would otherwise move the new job's watermark past the requests it waits for).
    """
    # Sources: served records and engagement events, raw, each with its watermark.
    group_id = (options.group_id if options else None) or PIPELINE.group_id
    for view, topic in (("served_raw", SERVED_FEATURES), ("engagement_raw", ENGAGEMENT)):
        t_env.create_temporary_table(view, kafka_raw_source(
            settings, topic=topic.name, group_id=group_id, start_from=start_from, out_of_orderness=WATERMARK_DELAY))
    catalog = register_iceberg_catalog(t_env, settings)

    # Steps and sinks: per training set, its rows into its served table.
    statements = t_env.create_statement_set()
    for training_set in training_sets:
        rows = served_training_views(t_env, "served_raw", "engagement_raw", training_set)
        table = ensure_served_table(t_env, catalog, training_set, t_env.from_path(rows))
        statements.add_insert_sql(f"INSERT INTO {table} SELECT * FROM {rows}")
    return statements


def _start_from(argv: list[str]) -> StartFrom:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--start-from", choices=get_args(StartFrom), default="group-offsets")
    return parser.parse_known_args(argv)[0].start_from


if __name__ == "__main__":
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in JOB_CONFIG.items():
        env.get_config().set(key, value)
    job_options = parse_job_options(sys.argv[1:], job="served_training", honoured=("--group-id",))
    build_served_training(env, load_settings(), options=job_options,
                          start_from=_start_from(sys.argv[1:])).execute()
