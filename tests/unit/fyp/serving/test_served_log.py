"""Served-feature logging (fyp/serving/served_log.py): sampling per request id, a read path that never waits for
the encoder or Kafka, and the ServedFeatures record: what was served, round-tripped, within its size limits.

The sinks here are plain objects that collect or hold records (no Kafka): the Kafka path runs in
tests/integration/test_zz_served_training.py.
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from features import feature_set_for_entity
from fyp.config import load_settings
from fyp.serving.layout import ReadPlan, decode_matrix, decode_row
from fyp.serving.served_log import (
    MAX_CANDIDATES,
    MAX_COLUMNS,
    MAX_NAME_BYTES,
    RECORD_NAME,
    ServedLog,
    ServedRead,
    ServedRows,
    encode_served,
    limit_error,
    sampled,
    served_columns,
)
from schemas.registry import UndecodableEvent, default_registry
from schemas.topics import SERVED_FEATURES
from udfs.limits import MAX_ID_BYTES

USER, VIDEO = feature_set_for_entity("user"), feature_set_for_entity("video")
USER_PLAN, VIDEO_PLAN = ReadPlan.of(USER), ReadPlan.of(VIDEO)
NOW = 1_767_225_600_000


def _packed(plan: ReadPlan, event_time: int, rng: np.random.Generator) -> bytes:
    values = rng.integers(0, 50, len(plan.columns)).astype("<f4")  # zeros included: some ratios are 0/0
    return struct.pack("<qq", event_time, event_time) + values.tobytes()


def _read(request_id: str = "r1", n: int = 5, *, missing: tuple[int, ...] = (), seed: int = 7) -> ServedRead:
    rng = np.random.default_rng(seed)
    ages = rng.integers(0, 3 * 3_600_000, n + 1)  # some windows have closed, every decay has run a while
    return ServedRead(
        request_id=request_id, served_time_ms=NOW, user_id="u1", video_ids=tuple(f"v{i}" for i in range(n)),
        user_value=_packed(USER_PLAN, NOW - int(ages[-1]), rng),
        video_values=[None if i in missing else _packed(VIDEO_PLAN, NOW - int(ages[i]), rng) for i in range(n)],
        user_plan=USER_PLAN, video_plan=VIDEO_PLAN)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None or not isinstance(a, float):
        return a == b
    return (math.isnan(a) and math.isnan(b)) or np.float32(a) == np.float32(b)


# --- sampling ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.001, 0.01, 0.1, 0.5])
def test_sampling_honours_the_rate(rate):
    n = 200_000
    chosen = sum(sampled(f"request-{i}", rate) for i in range(n))
    sigma = math.sqrt(n * rate * (1 - rate))
    assert abs(chosen - n * rate) < 4 * sigma, (chosen, n * rate)


def test_sampling_is_a_function_of_the_request_id():
    ids = [f"req-{i}" for i in range(5_000)]
    assert [sampled(i, 0.3) for i in ids] == [sampled(i, 0.3) for i in ids]
    assert all(sampled(i, 1.0) for i in ids) and not any(sampled(i, 0.0) for i in ids)
    # A higher rate keeps every id a lower one chose: raising it adds requests, never swaps them.
    assert {i for i in ids if sampled(i, 0.1)} <= {i for i in ids if sampled(i, 0.2)}


def test_the_rate_is_a_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("FYP_HOME", str(tmp_path))
    monkeypatch.delenv("FYP_SERVED_LOG_SAMPLE_RATE", raising=False)
    load_settings.cache_clear()
    try:
        assert load_settings().served_log_sample_rate == 0.01
        monkeypatch.setenv("FYP_SERVED_LOG_SAMPLE_RATE", "0.25")
        load_settings.cache_clear()
        assert load_settings().served_log_sample_rate == 0.25
        for bad in ("1.5", "-0.1", "often", "nan"):
            monkeypatch.setenv("FYP_SERVED_LOG_SAMPLE_RATE", bad)
            load_settings.cache_clear()
            with pytest.raises(ValueError, match="FYP_SERVED_LOG_SAMPLE_RATE"):
                load_settings()
    finally:
        load_settings.cache_clear()
    with pytest.raises(ValueError, match=r"sample_rate must be in \[0, 1\]"):
        ServedLog(None, sample_rate=2.0, start=False)


# --- the read path never waits ------------------------------------------------------------------------------------


class HeldSink:
    """A sink whose first send waits until released (a stalled broker), then collects what it is sent."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.records: list[tuple[bytes, bytes, int]] = []

    def send(self, key: bytes, value: bytes, timestamp_ms: int, done: Callable[[str | None], None]) -> None:
        self.entered.set()
        self.release.wait(30)
        self.records.append((key, value, timestamp_ms))
        done(None)

    def poll(self) -> None:
        pass

    def flush(self, timeout_s: float) -> int:
        return 0


def test_a_full_queue_drops_instead_of_blocking():
    sink = HeldSink()
    served = ServedLog(sink, sample_rate=1.0, queue_size=2)
    read = _read(n=3)
    assert served.offer(read)
    assert sink.entered.wait(10)  # the encoder holds one read, stuck in the sink
    waits = []
    for _ in range(500):
        started = time.perf_counter()
        served.offer(read)
        waits.append(time.perf_counter() - started)
    stats = served.stats()
    assert (stats.sampled, stats.dropped, stats.pending) == (501, 498, 3)  # 1 in the sink, 2 queued
    assert max(waits) < 0.05, f"an offer waited {max(waits) * 1000:.1f} ms"
    sink.release.set()
    stats = served.close()
    assert (stats.logged, stats.dropped, stats.failed, stats.pending) == (3, 498, 0, 0)
    assert len(sink.records) == 3


def test_records_carry_the_user_key_and_the_served_time():
    sink = HeldSink()
    sink.release.set()
    with ServedLog(sink, sample_rate=1.0) as served:
        for i in range(4):
            served.offer(_read(f"r{i}", n=2, seed=i))
    assert [(key, ts) for key, _, ts in sink.records] == [(b"u1", NOW)] * 4
    assert [default_registry().decode(value).record["request_id"] for _, value, _ in sink.records] == [
        "r0", "r1", "r2", "r3"]


def test_a_record_over_a_limit_fails_and_is_counted_without_stopping_the_log():
    sink = HeldSink()
    sink.release.set()
    with ServedLog(sink, sample_rate=1.0) as served:
        served.offer(_read("too-many", n=MAX_CANDIDATES + 1))
        served.offer(_read("fine", n=2))
    stats = served.stats()
    assert (stats.logged, stats.failed) == (1, 1) and "too_many:candidates" in stats.last_error


# --- the record -------------------------------------------------------------------------------------------------


def test_the_record_round_trips_what_the_read_served():
    read = _read(n=6, missing=(2,))
    rows = ServedRows(USER, VIDEO)(encode_served(read))
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [("r1", NOW, "u1", f"v{i}", i) for i in range(6)]

    user_values, user_time = decode_row(USER_PLAN, read.user_value, NOW)  # what for_request's user holds
    assert {r[5] for r in rows} == {user_time}
    assert all(_same(a, b) for a, b in zip(rows[0][7:7 + len(user_values)], user_values.values(), strict=True))

    matrix, times = decode_matrix(VIDEO_PLAN, read.video_values, NOW)  # for_request's `videos`
    width = len(VIDEO_PLAN.columns)
    for i, row in enumerate(rows):
        values = row[7 + len(user_values):]
        assert row[6] == times[i]
        if i == 2:
            assert row[6] == 0 and values == (None,) * len(served_columns(VIDEO_PLAN))
            continue
        assert all(_same(a, b) for a, b in zip(values[:width], matrix[i], strict=True))
        # Ratios as decode_row computes them from the served values.
        served = dict(zip(VIDEO_PLAN.columns, matrix[i], strict=True))
        for (name, num, den), got in zip(VIDEO_PLAN.ratios, values[width:], strict=True):
            want = served[VIDEO_PLAN.columns[num]] / served[VIDEO_PLAN.columns[den]] \
                if served[VIDEO_PLAN.columns[den]] > 0 else float("nan")
            assert _same(got, want), name
    assert any(math.isnan(v) for row in rows for v in row[7:] if v is not None), "0/0 ratios are NaN"


def test_a_record_at_every_limit_fits_the_topic():
    long_id = "x" * MAX_ID_BYTES
    names = [f"{i:03d}".ljust(MAX_NAME_BYTES, "c") for i in range(MAX_COLUMNS)]
    values = np.full(MAX_COLUMNS, np.pi, dtype="<f4").tobytes()
    record = {
        "request_id": long_id, "served_time": NOW, "user_id": long_id, "user_set": "s" * MAX_NAME_BYTES,
        "user_columns": names, "user_event_time_ms": NOW, "user_values": values,
        "video_set": "s" * MAX_NAME_BYTES, "video_columns": names,
        "candidates": [{"video_id": long_id, "event_time_ms": NOW, "values": values}] * MAX_CANDIDATES,
    }
    payload = default_registry().encode(RECORD_NAME, record)
    assert len(payload) <= SERVED_FEATURES.max_message_bytes, len(payload)
    assert default_registry().decode(payload).record == {**record, "schema_version": 1}


def test_a_ranking_request_of_500_candidates_is_a_fraction_of_the_limit():
    payload = encode_served(_read(n=500))
    assert len(payload) < SERVED_FEATURES.max_message_bytes / 4, len(payload)


@pytest.mark.parametrize(("change", "reason"), [
    ({"video_ids": tuple(f"v{i}" for i in range(MAX_CANDIDATES + 1))}, "too_many:candidates"),
    ({"video_ids": ("v1", "é" * (MAX_ID_BYTES // 2 + 1))}, "too_long:video_id"),
    ({"request_id": "r" * (MAX_ID_BYTES + 1)}, "too_long:request_id"),
    ({"user_id": "u" * (MAX_ID_BYTES + 1)}, "too_long:user_id"),
])
def test_limits_name_the_field(change, reason):
    fields = {name: getattr(_read(n=2), name) for name in ServedRead.__dataclass_fields__}
    read = ServedRead(**{**fields, **change, "video_values": [None] * len(change.get("video_ids", "ab"))})
    assert limit_error(read) == reason
    with pytest.raises(ValueError, match=reason):
        encode_served(read)
    assert limit_error(_read(n=MAX_CANDIDATES)) is None


def test_rows_follow_the_names_not_the_positions():
    record = default_registry().decode(encode_served(_read(n=1))).record
    reordered = {**record, "video_columns": record["video_columns"][::-1],
                 "candidates": [{**c, "values": np.frombuffer(c["values"], "<f4")[::-1].tobytes()}
                                for c in record["candidates"]]}
    decode = ServedRows(USER, VIDEO)
    (original,) = decode(default_registry().encode(RECORD_NAME, record))
    (mapped,) = decode(default_registry().encode(RECORD_NAME, reordered))
    assert all(_same(a, b) for a, b in zip(original, mapped, strict=True))


def test_another_set_version_gives_no_values_and_is_counted():
    record = default_registry().decode(encode_served(_read(n=2))).record
    decode = ServedRows(USER, VIDEO)
    rows = decode(default_registry().encode(RECORD_NAME, {**record, "video_set": f"{VIDEO.name}.v99"}))
    user_width = len(served_columns(USER_PLAN))
    assert all(r[7 + user_width:] == (None,) * len(served_columns(VIDEO_PLAN)) for r in rows)
    assert all(r[7] is not None for r in rows) and decode.set_mismatches == 1


def test_other_payloads_are_undecodable():
    decode = ServedRows(USER, VIDEO)
    with pytest.raises(UndecodableEvent):
        decode(b"\x00garbage")
    save = default_registry().encode("Save", {
        "event_id": "e1", "event_time": NOW, "user_id": "u1", "video_id": "v1", "author_id": "a1", "region": "US",
        "language": "en", "session_id": "s1"})
    with pytest.raises(UndecodableEvent, match="unknown_type"):
        decode(save)


def test_the_examples_in_the_docstrings_run():
    import doctest

    import fyp.serving.served_log as module

    assert doctest.testmod(module, raise_on_error=True).failed == 0
