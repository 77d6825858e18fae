"""PyFlink wrappers around the pure functions in `udfs/`, with their Flink result types and metrics.

Only this module imports PyFlink; it runs in the Flink environment (.venv-flink). The logic stays in the pure
modules, which the tools environment tests without a cluster.
"""

from __future__ import annotations

import time

from pyflink.common import Row
from pyflink.table import DataTypes, TableEnvironment
from pyflink.table.types import DataType
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from udfs.dead_letter import dead_letter_payload
from udfs.envelope import ENGAGEMENT_ROW_FIELDS, JAVA_DECODER, JAVA_ROW_DECODER, to_engagement_row
from udfs.exploration import decision_payload
from udfs.guard import GuardedFunction, failure_function
from udfs.lateness import LatenessGate
from udfs.sentiment import comment_sentiment
from udfs.upload_events import RENDITION_FIELDS, RENDITIONS, UPLOAD_EVENT_ROW_FIELDS, to_upload_event_row

__all__ = [
    "ENGAGEMENT_ROW_TYPE",
    "LATE",
    "SCALAR_FUNCTIONS",
    "GuardedScalar",
    "decode_engagement",
    "decode_upload_event",
    "encode_dead_letter",
    "encode_exploration_decision",
    "flink_type",
    "guarded_functions",
    "register_java_decoder",
]

LATE = "late"  # the `error` of a row too far behind the newest event time: counted, not a dead letter

_SCALARS: dict[str, DataType] = {
    "STRING": DataTypes.STRING(), "BIGINT": DataTypes.BIGINT(), "INT": DataTypes.INT(),
    "DOUBLE": DataTypes.DOUBLE(), "BOOLEAN": DataTypes.BOOLEAN(), "BYTES": DataTypes.BYTES(),
}


def flink_type(sql_type: str) -> DataType:
    """The PyFlink DataType of a SQL type name used in `udfs` field lists (scalars and ARRAY<...>)."""
    if sql_type == RENDITIONS:
        return DataTypes.ARRAY(DataTypes.ROW([DataTypes.FIELD(n, flink_type(t)) for n, t in RENDITION_FIELDS]))
    if sql_type.startswith("ARRAY<") and sql_type.endswith(">"):
        return DataTypes.ARRAY(flink_type(sql_type[6:-1]))
    return _SCALARS[sql_type]


_FIELD_NAMES = [name for name, _ in ENGAGEMENT_ROW_FIELDS]
_HASHTAGS, _ARMS, _EVENT_TIME, _ERROR = (_FIELD_NAMES.index(n) for n in ("hashtags", "arms", "event_time", "error"))
ENGAGEMENT_ROW_TYPE = DataTypes.ROW([DataTypes.FIELD(name, flink_type(t)) for name, t in ENGAGEMENT_ROW_FIELDS])


class DecodeEngagement(ScalarFunction):
    """Raw Kafka value -> engagement row; counts dead letters and late events as Flink metrics.

    decode_engagement(payload, allowed_lateness_ms, kafka_partition): a row whose event time is more than the
    allowed lateness behind the newest event time decoded before it from the same Kafka partition gets error
    'late' (udfs/lateness.py; without a partition, the subtask's newest time). The SQL watermark cannot serve
    here: with mini-batches on, Flink's MiniBatchAssigner replaces event-time watermarks with processing-time
    ones, which would mark a whole replayed backlog late.
    """

    def open(self, function_context: FunctionContext) -> None:
        group = function_context.get_metric_group()
        self.dead_letters = group.counter("fyp_dead_letters_total")
        self.late_events = group.counter("fyp_late_events_total")
        self.gate: LatenessGate | None = None

    def eval(self, payload: bytes, allowed_lateness_ms: int | None = None, partition: int | None = None):
        now_ms = int(time.time() * 1000)
        values = list(to_engagement_row(payload, now_ms))
        event_ms = values[_EVENT_TIME]
        if values[_ERROR] is not None:
            self.dead_letters.inc()
        elif allowed_lateness_ms is not None:
            if self.gate is None:
                self.gate = LatenessGate(allowed_lateness_ms)
            if not self.gate.admit(partition, event_ms, now_ms):
                values[_ERROR] = LATE
                self.late_events.inc()
        # Thread mode's converter cannot turn a null ARRAY into Java (TypeError in to_external).
        for array in (_HASHTAGS, _ARMS):
            if values[array] is None:
                values[array] = []
        return Row(*values)


decode_engagement = udf(DecodeEngagement(), result_type=ENGAGEMENT_ROW_TYPE)


_UPLOAD_ARRAYS = [i for i, (_, t) in enumerate(UPLOAD_EVENT_ROW_FIELDS) if t.startswith("ARRAY<")]
UPLOAD_EVENT_ROW_TYPE = DataTypes.ROW([DataTypes.FIELD(n, flink_type(t)) for n, t in UPLOAD_EVENT_ROW_FIELDS])


class DecodeUploadEvent(ScalarFunction):
    """Raw Kafka value of the uploads or status topic -> upload event row; counts undecodable records.

    Null arrays come out empty (thread mode cannot convert a null ARRAY); the job nulls them again where the
    record has no such field.
    """

    def open(self, function_context: FunctionContext) -> None:
        self.undecodable = function_context.get_metric_group().counter("fyp_upload_events_undecodable_total")

    def eval(self, payload: bytes):
        values = list(to_upload_event_row(payload))
        if values[-1] is not None:
            self.undecodable.inc()
        for i in _UPLOAD_ARRAYS:
            if values[i] is None:
                values[i] = []
            elif values[i] and isinstance(values[i][0], tuple):
                values[i] = [Row(*v) for v in values[i]]
        return Row(*values)


decode_upload_event = udf(DecodeUploadEvent(), result_type=UPLOAD_EVENT_ROW_TYPE)


@udf(result_type=DataTypes.BYTES())
def encode_dead_letter(topic: str, partition: int, offset: int, reason: str, payload: bytes,
                       key: bytes | None = None) -> bytes:
    """Runs once per dead letter, never per good event; `key` is the original record key."""
    return dead_letter_payload(topic, partition, offset, reason, payload, key=key)


# Guards shared by the value and failure functions of one name within a worker's interpreter (set in `open`),
# so that the dead-letter check reuses the evaluation the feature sets made.
_SHARED_GUARDS: dict[str, GuardedFunction] = {}


class GuardedScalar(ScalarFunction):
    """A guarded per-event function as Flink sees it (udfs/guard.py): `NAME(args)` gives the value or NULL, and
    `NAME_FAILURE(args)` the reason it gave NULL (the job's dead-letter branch). Counts failures in
    `fyp_udf_failures_total`."""

    def __init__(self, guard: GuardedFunction, *, reports_failure: bool = False) -> None:
        self.guard = guard
        self.reports_failure = reports_failure

    def open(self, function_context: FunctionContext) -> None:
        self.guard = _SHARED_GUARDS.setdefault(self.guard.name, self.guard)
        self.failures = function_context.get_metric_group().counter("fyp_udf_failures_total")

    def eval(self, *args):
        if self.reports_failure:
            return self.guard.failure(*args)
        before = self.guard.failures
        value = self.guard(*args)
        if self.guard.failures > before:
            self.failures.inc()
        return value


def guarded_functions(guard: GuardedFunction, result_type: DataType) -> dict[str, object]:
    """`{NAME: value UDF, NAME_FAILURE: failure UDF}` for one guarded function."""
    return {guard.name: udf(GuardedScalar(guard), result_type=result_type),
            failure_function(guard.name): udf(GuardedScalar(guard, reports_failure=True),
                                              result_type=DataTypes.STRING())}


# SQL name -> Python scalar function, for the derived columns of feature sets (featurespec/declaration.py
# `DerivedColumn`), each with its `_FAILURE` twin; a features job registers them all with
# create_temporary_system_function.
SCALAR_FUNCTIONS = guarded_functions(GuardedFunction("COMMENT_SENTIMENT", comment_sentiment), DataTypes.DOUBLE())


def register_java_decoder(t_env: TableEnvironment, *, rows: bool = False) -> str:
    """Register the engagement decoder (Java, `udfs/java/envelope`) under its SQL name, which it returns: the
    scalar function (its row as one nested ROW value), or with `rows` the table function (its row as columns)."""
    name, java_class = JAVA_ROW_DECODER if rows else JAVA_DECODER
    t_env.execute_sql(f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS '{java_class}' LANGUAGE JAVA")
    return name


@udf(result_type=DataTypes.BYTES())
def encode_exploration_decision(video_id: str, author_id: str | None, decision: str, event_time_ms: int,
                                impressions: int, completion_rate: float, like_rate: float) -> bytes:
    """Runs once per decided video (at most once per video), never per event."""
    return decision_payload(video_id=video_id, author_id=author_id, decision=decision, event_time_ms=event_time_ms,
                            impressions=impressions, completion_rate=completion_rate, like_rate=like_rate)
