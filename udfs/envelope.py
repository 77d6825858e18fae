"""Turn one raw Kafka value from fyp.engagement.v1 into the flat "engagement row" Flink works with.

Runs inside Flink as a Python UDF, once per event: it never raises, and imports only the registry and
the standard library. A bad event still gives a row, with `error` saying why, so that the job can
route it to the dead-letter topic instead of failing.

Error reasons, checked in this order (the first one wins):
    undecodable:<reason>      the registry could not decode it (too_short, bad_marker, unknown_fingerprint,
                              truncated_body, corrupt_body; internal for a bug in the decoder)
    unknown_type:<record>     decoded, but not an engagement record (e.g. unknown_type:Takedown)
    missing_id:<field>        event_id, user_id or video_id is empty (checked in that order)
    too_long:<field>          a text field, or one hashtag, is over its size limit (udfs/limits.py)
    bad_id:<field>            an id, region, language or hashtag holds `:` or a control character
    too_many:hashtags         more hashtags than udfs/limits.MAX_HASHTAGS
    too_many:arms             more experiment arms than udfs/limits.MAX_ARMS (impressions)
    too_long:arms             an arm id over udfs/limits.MAX_ARM_ID_BYTES
    bad_arm:arms              an arm id that is not 'experiment:arm' (udfs/limits.valid_arm_id)
    negative_duration:<field> watch_ms, video_duration_ms or dwell_ms is below 0 (in that order)
    out_of_range:<field>      watch_ms past the video's duration, a duration or dwell over an hour, or a loop
                              count outside 1..10,000 (udfs/limits.py; the order is limits.field_error's)
    future_timestamp          event_time > now_ms + max_future_ms
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.registry import EVENT_TYPES, SchemaRegistry, UndecodableEvent, default_registry
from udfs.limits import field_error

__all__ = ["ENGAGEMENT_COLUMNS", "ENGAGEMENT_ROW_FIELDS", "JAVA_DECODER", "JAVA_ROW_DECODER", "to_engagement_row"]

# (name, Flink SQL type), in row order. Jobs build their row type from this.
# Integers are BIGINT even where Avro has int (schema_version, loop_count): PyFlink's thread mode
# throws a NullPointerException on a null INT.
ENGAGEMENT_ROW_FIELDS: tuple[tuple[str, str], ...] = (
    ("event_type", "STRING"),
    ("event_id", "STRING"),
    ("event_time", "BIGINT"),  # epoch milliseconds
    ("schema_version", "BIGINT"),  # the producer's schema version
    ("user_id", "STRING"),
    ("video_id", "STRING"),
    ("author_id", "STRING"),
    ("sound_id", "STRING"),
    ("region", "STRING"),
    ("language", "STRING"),
    ("session_id", "STRING"),
    ("hashtags", "ARRAY<STRING>"),
    ("watch_ms", "BIGINT"),  # watch: milliseconds watched in the first play
    ("video_duration_ms", "BIGINT"),  # watch, loop, skip
    ("dwell_ms", "BIGINT"),  # skip: milliseconds on screen
    ("loop_count", "BIGINT"),  # loop: 1 = first rewatch
    ("action", "STRING"),  # like/follow/sound_engagement: enum symbol; share: channel; not_interested: reason
    ("comment_text", "STRING"),  # comment
    ("arms", "ARRAY<STRING>"),  # impression (v2 on): the experiment arms that served it; empty for other types
    ("error", "STRING"),  # None for a good event, else a reason (module docstring)
)

# The row's data columns: every field but `error`, which only the decoder and the dead-letter branch read.
ENGAGEMENT_COLUMNS: tuple[str, ...] = tuple(name for name, _ in ENGAGEMENT_ROW_FIELDS if name != "error")

# The job decodes with this Java port of `to_engagement_row` (SQL name, class; udfs/java/envelope): same rows,
# reasons and lateness rule, no Python per event. This module stays the reference the port is tested against.
JAVA_DECODER = ("DECODE_ENGAGEMENT", "dev.fyp.flink.envelope.DecodeEngagement")
# The same decoder as a table function: its row as flat columns, one call per record (the features job's reads).
JAVA_ROW_DECODER = ("DECODE_ENGAGEMENT_ROWS", "dev.fyp.flink.envelope.DecodeEngagementRows")

_WIDTH = len(ENGAGEMENT_ROW_FIELDS)
_NO_DETAIL = (None, None, None, None, None, None)
_DETAIL_NAMES = ("watch_ms", "video_duration_ms", "dwell_ms", "loop_count", "action", "comment_text")

# Per event type: record -> (watch_ms, video_duration_ms, dwell_ms, loop_count, action, comment_text).
_DETAIL: dict[str, Callable[[dict[str, Any]], tuple[Any, ...]]] = {
    "impression": lambda r: _NO_DETAIL,
    "watch": lambda r: (r["watch_ms"], r["video_duration_ms"], None, None, None, None),
    "loop": lambda r: (None, r["video_duration_ms"], None, r["loop_count"], None, None),
    "skip": lambda r: (None, r["video_duration_ms"], r["dwell_ms"], None, None, None),
    "like": lambda r: (None, None, None, None, r["action"], None),
    "share": lambda r: (None, None, None, None, r["channel"], None),
    "save": lambda r: _NO_DETAIL,
    "follow": lambda r: (None, None, None, None, r["action"], None),
    "comment": lambda r: (None, None, None, None, None, r["text"]),
    "sound_engagement": lambda r: (None, None, None, None, r["action"], None),
    "not_interested": lambda r: (None, None, None, None, r["reason"], None),
}
if set(_DETAIL) != set(EVENT_TYPES):  # a new event type needs a row mapping here
    raise RuntimeError(f"envelope maps {sorted(_DETAIL)}, registry has {sorted(EVENT_TYPES)}")


def _error_row(reason: str) -> tuple[Any, ...]:
    return (None,) * (_WIDTH - 1) + (reason,)


def _row(payload: bytes, now_ms: int, max_future_ms: int, registry: SchemaRegistry) -> tuple[Any, ...]:
    if not payload:  # None (a tombstone) or b""
        return _error_row("undecodable:too_short")
    try:
        event = registry.decode(payload)
    except UndecodableEvent as exc:
        return _error_row(f"undecodable:{exc.reason}")
    detail = _DETAIL.get(event.event_type)
    if detail is None:
        return _error_row(f"unknown_type:{event.record_name}")
    r = event.record
    durations = detail(r)
    # Only impressions have the field; an Impression v1 record resolves to its default, [].
    arms = r.get("arms", [])
    error = None
    if not r["event_id"]:
        error = "missing_id:event_id"
    elif not r["user_id"]:
        error = "missing_id:user_id"
    elif not r["video_id"]:
        error = "missing_id:video_id"
    else:
        error = field_error({**r, **dict(zip(_DETAIL_NAMES, durations, strict=True))})
        if error is None and r["event_time"] > now_ms + max_future_ms:
            error = "future_timestamp"
    return (
        event.event_type,
        r["event_id"],
        r["event_time"],
        event.schema_version,
        r["user_id"],
        r["video_id"],
        r["author_id"],
        r["sound_id"],
        r["region"],
        r["language"],
        r["session_id"],
        r["hashtags"],
        *durations,
        arms,
        error,
    )


def to_engagement_row(payload: bytes, now_ms: int, max_future_ms: int = 300_000) -> tuple[Any, ...]:
    """Decode `payload` into a tuple ordered as ENGAGEMENT_ROW_FIELDS; never raises.

    payload: the Kafka record value (single-object-encoded Avro).
    now_ms: processing time, epoch milliseconds; events later than now_ms + max_future_ms are rejected.
    max_future_ms: tolerated client clock skew, milliseconds (default 5 minutes).

    Fields an event type does not have are None. For a bad event, `error` (the last field) holds the
    reason and the fields that could be read are filled in (all None when undecodable).

    >>> to_engagement_row(b"not avro", now_ms=0)[-1]
    'undecodable:bad_marker'
    """
    try:
        return _row(payload, now_ms, max_future_ms, default_registry())
    except Exception as exc:  # a bug here must not kill the job: park the event in the DLQ instead
        return _error_row(f"undecodable:internal:{type(exc).__name__}")
