"""The Java decoder the job uses (DECODE_ENGAGEMENT, udfs/java/envelope) against the Python reference
(udfs/envelope.py via udfs/flink_functions.py), both run by Flink on the same in-memory payloads: good events of
every type, each kind of malformed record, late events per partition, and seeded random corruptions."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

from jobs.engagement_features import engagement_views
from schemas.registry import EVENT_TYPES, MARKER, default_registry
from tests.flink.conftest import raw_view
from tests.hostile_corpus import hostile_cases
from udfs.envelope import ENGAGEMENT_ROW_FIELDS, JAVA_DECODER
from udfs.flink_functions import register_java_decoder

NOW = int(time.time() * 1000)  # reset by the test
LATENESS = timedelta(minutes=2)


def _value(schema: Any, name: str, i: int) -> Any:
    """A plausible value of `schema` for field `name` (the i-th event)."""
    if isinstance(schema, list):  # a union: its first non-null branch
        return _value(next(s for s in schema if s != "null"), name, i)
    kind = schema["type"] if isinstance(schema, dict) else schema
    if kind == "string":
        return f"{name}-{i}-ü✓"  # non-ASCII: both sides must carry UTF-8 through
    if kind == "long":
        return NOW - i * 1000 if name == "event_time" else 1_000 + i
    if kind == "int":
        return 1 + i % 3
    if kind == "boolean":
        return i % 2 == 0
    if kind in ("float", "double"):
        return 0.5
    if kind == "enum":
        return schema["symbols"][i % len(schema["symbols"])]
    if kind == "array" and name == "arms":  # Impression's experiment arms: 'experiment:arm'
        return [f"exp{i}:control", f"exp{i + 1}:treatment"][: i % 3]
    if kind == "array":
        return [f"tag{i}", f"tag{i + 1}"][: i % 3]
    if isinstance(kind, dict):
        return _value(kind, name, i)
    raise AssertionError(f"no filler for {schema}")


def _record(record_name: str, i: int, **overrides: Any) -> dict[str, Any]:
    schema = default_registry().latest(record_name).schema
    record = {f["name"]: _value(f["type"], f["name"], i) for f in schema["fields"] if f["name"] != "schema_version"}
    return {**record, **overrides}


def _encode(record_name: str, i: int = 0, **overrides: Any) -> bytes:
    return default_registry().encode(record_name, _record(record_name, i, **overrides))


def _record_names() -> list[str]:
    names = {n.lower().replace("_", ""): n for n in default_registry().record_names}
    return [names[t.replace("_", "")] for t in EVENT_TYPES]


def _payloads() -> list[tuple[bytes, int]]:
    """(payload, kafka partition) in offset order."""
    good = [_encode(name, i) for i, name in enumerate(_record_names())]
    watch = _encode("Watch", 1)
    malformed = [
        b"", b"\xc3", b"not avro", MARKER + b"\x01\x02\x03", MARKER + b"\x00" * 8 + watch[10:],
        watch[:-1], watch[:12], watch + b"\x00", watch.replace(b"event_id-1", b"event_id-\xff"),
        _encode("Takedown"),
        _encode("Watch", 2, event_id=""), _encode("Watch", 3, user_id=""), _encode("Like", 4, video_id=""),
        _encode("Watch", 5, watch_ms=-1), _encode("Loop", 6, video_duration_ms=-5), _encode("Skip", 7, dwell_ms=-2),
        _encode("Watch", 8, event_time=NOW + 86_400_000),
    ]
    rng = random.Random(7)
    corrupted = []
    for _ in range(300):
        p = bytearray(rng.choice(good))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(10, len(p))
            p[at] = rng.randrange(256)
        if rng.random() < 0.3:
            p = p[: rng.randrange(10, len(p))]
        corrupted.append(bytes(p))
    # Lateness is per partition: partition 5 moves to NOW, then an event 10 min older there is late,
    # while the same time on partition 6 (its first event) is on time.
    late = [(_encode("Watch", 20, event_time=NOW), 5), (_encode("Watch", 21, event_time=NOW - 600_000), 5),
            (_encode("Watch", 22, event_time=NOW - 600_000), 6), (_encode("Watch", 23, event_time=NOW - 60_000), 5)]
    hostile = [_encode(case.record_name, 30 + i, **case.fields) for i, case in enumerate(hostile_cases("agree"))]
    # A client clock 200 s ahead (inside the 5-minute skew) on partition 8, then another client's on-time event
    # there: the newest time stops at the wall clock, so it is not late (it would be, 201 s behind, uncapped).
    ahead = [(_encode("Watch", 90, event_time=NOW + 200_000), 8), (_encode("Watch", 91, event_time=NOW - 1_000), 8)]
    return [(p, i % 2) for i, p in enumerate(good + malformed + corrupted + hostile)] + ahead + late


def test_java_and_python_decoders_give_the_same_rows(t_env):
    # Event times are relative to the test's start, not the module's import: the decoders judge lateness by the
    # wall clock, and a slow run of earlier tests would otherwise make the on-time probes late.
    global NOW
    NOW = int(time.time() * 1000)
    payloads = _payloads()
    raw_view(t_env, [p for p, _ in payloads], [partition for _, partition in payloads])
    engagement_views(t_env, "raw", allowed_lateness=LATENESS)  # the Python decoder, and `decoded` over the Java one
    register_java_decoder(t_env)  # the scalar form, for the side-by-side query below
    lateness_ms = int(LATENESS.total_seconds() * 1000)
    names = [name for name, _ in ENGAGEMENT_ROW_FIELDS]
    # Flat columns: PyFlink's collect() cannot bring back nested rows.
    flat = ", ".join(f"{side}.`{name}`" for side in ("j", "p") for name in names)
    query = (f"SELECT kafka_offset, {flat} FROM ("
             f"SELECT kafka_offset, {JAVA_DECODER[0]}(payload, CAST({lateness_ms} AS BIGINT), kafka_partition) AS j, "
             f"decode_engagement(payload, CAST({lateness_ms} AS BIGINT), kafka_partition) AS p FROM raw_rows)")
    width = len(names)
    with t_env.sql_query(query).execute().collect() as results:
        decoded = {row[0]: (tuple(row[1:1 + width]), tuple(row[1 + width:])) for row in results}
    assert len(decoded) == len(payloads)
    differences = {offset: {n: (j, p) for n, j, p in zip(names, java, python, strict=True) if j != p}
                   for offset, (java, python) in decoded.items() if java != python}
    assert differences == {}
    # The features job's `decoded` view: the Java table function's flat columns, the same rows again.
    with t_env.sql_query(f"SELECT kafka_offset, {', '.join(f'`{n}`' for n in names)} FROM decoded").execute() \
            .collect() as results:
        viewed = {row[0]: tuple(row[1:]) for row in results}
    assert viewed == {offset: python for offset, (_, python) in decoded.items()}
    errors = [python[-1] for _, python in decoded.values()]
    # The inputs do cover every reason the reference gives.
    for reason in ("undecodable:too_short", "undecodable:bad_marker", "undecodable:unknown_fingerprint",
                   "undecodable:truncated_body", "undecodable:corrupt_body", "unknown_type:Takedown",
                   "missing_id:event_id", "missing_id:user_id", "missing_id:video_id",
                   "negative_duration:watch_ms", "negative_duration:video_duration_ms",
                   "negative_duration:dwell_ms", "future_timestamp", "late",
                   *{case.reason for case in hostile_cases() if case.reason}):
        assert reason in errors, reason
    assert errors.count(None) >= len(EVENT_TYPES)
    last_six = [decoded[o][1][-1] for o in range(len(payloads) - 6, len(payloads))]
    assert last_six == [None, None, None, "late", None, None]
