"""Served-feature logging end to end on the real stack: engagement -> features in Redis -> logged ranking reads
(FeatureClient.for_request with a ServedLog) -> fyp.served-features.v1 -> jobs/served_training.py, joined with
the engagement that followed -> `training.served_watch_outcomes` in Iceberg.

The label horizon is 10 minutes of event time. Rather than wait for it, the test moves event time: once the job
has read the requests and the label events (its consumer group has committed them on a checkpoint), one record
per partition of both topics, stamped past the horizon, pushes the job's watermark there. On the engagement topic
that record is stamped too far ahead for the other jobs (a dead letter `future_timestamp` in the features job,
absent from the history), so no feature and no history row changes; on the served topic it is a request without
candidates. An earlier run's such records would put a job that reads them ahead of this run's requests, so each
run starts its own join job on a new consumer group from the latest offsets, into a new table.

Named test_zz_ so that it runs after every other test that reads the engagement topic (before the stack is
stopped): its far-future records would move the Kafka-timestamp watermark of any other job that reads them on
event time.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import time
import uuid

import httpx
import numpy as np
import pytest
import typer
from confluent_kafka import Consumer, Producer, TopicPartition
from typer.testing import CliRunner

from connectors.iceberg_tables import catalog, ensure_tables
from features import feature_set_for_entity
from featurespec.reference.parse import engagement_row
from featurespec.reference.sql import compile_predicate
from featurespec.training import feature_column
from fyp.commands import training as training_commands
from fyp.pipelines import (
    ENGAGEMENT_FEATURES_JOB,
    ENGAGEMENT_HISTORY_JOB,
    SERVED_TRAINING_JOB,
    UPLOAD_ORCHESTRATION_JOB,
    VIDEO_EMBEDDINGS_JOB,
)
from fyp.serving import FeatureClient
from fyp.serving.served_log import ServedLog, ServedRead, encode_served, sampled, served_columns
from fyp.stack.submit import cancel_job, list_jobs, submit_job
from schemas.tables import ENGAGEMENT_HISTORY
from schemas.topics import ENGAGEMENT, SERVED_FEATURES
from tests.integration.conftest import eventually
from training import training_set
from udfs.envelope import ENGAGEMENT_COLUMNS

pytestmark = pytest.mark.integration

WATCH_OUTCOMES = training_set("watch_outcomes")
USER, VIDEO = feature_set_for_entity("user"), feature_set_for_entity("video")
CLOCK_SKEW_MS = 120_000  # jobs/served_training.py CLOCK_SKEW (ALLOWED_LATENESS); the job module needs PyFlink
SAMPLE_RATE = 0.5


@pytest.fixture(scope="module")
def served_job(settings):
    """A new join job on a new consumer group, reading from now on, into a new served table."""
    ensure_tables(settings)
    # The upload tests' two jobs are done with by now; with them the local TaskManager's 8 slots are all taken and this
    # job never gets one (its first checkpoint timed out in a full run).
    done_with = {SERVED_TRAINING_JOB.pipeline_name, UPLOAD_ORCHESTRATION_JOB.pipeline_name,
                 VIDEO_EMBEDDINGS_JOB.pipeline_name}
    for job in list_jobs(settings):
        if job.name in done_with and job.state in ("RUNNING", "CREATED", "RESTARTING"):
            cancel_job(settings, job.job_id)
    lake = catalog(settings)
    with contextlib.suppress(Exception):  # absent on a first run
        lake.purge_table(WATCH_OUTCOMES.served_table)
    group = f"it-served-{uuid.uuid4().hex[:8]}"
    job_id = submit_job(settings, SERVED_TRAINING_JOB.job, properties={"execution.checkpointing.interval": "5s"},
                        job_args=["--group-id", group, "--start-from", "latest-offset"])
    # A completed checkpoint means every source has its start offsets: records sent from now on are read.
    eventually(lambda: httpx.get(f"{settings.flink_rest_url}/jobs/{job_id}/checkpoints", timeout=5)
               .json().get("counts", {}).get("completed", 0) >= 1, timeout_s=120,
               message="the served-training job's first checkpoint")
    yield group
    if os.environ.get("FYP_KEEP_STACK") != "1":
        cancel_job(settings, job_id)


def _caught_up(settings, group: str) -> bool:
    """Whether `group` has committed, on a checkpoint, every record now on both topics: each one has then passed
    the join job's Python decoder and reached the join (an operator flushes what it buffers before a barrier)."""
    consumer = Consumer({**settings.kafka_client_config(), "group.id": group, "enable.auto.commit": False})
    try:
        partitions = [TopicPartition(t.name, p) for t in (SERVED_FEATURES, ENGAGEMENT) for p in range(t.partitions)]
        committed = consumer.committed(partitions, timeout=10)
        for done, partition in zip(committed, partitions, strict=True):
            end = consumer.get_watermark_offsets(partition, timeout=10)[1]
            if end and done.offset < end:  # nothing committed yet reads as a negative offset
                return False
        return True
    finally:
        consumer.close()


def _float(value: float | None) -> float | str | None:
    """A value as the table holds it (float32; NaN spelt out, as NaN != NaN)."""
    if value is None:
        return None
    return "NaN" if math.isnan(value) else float(np.float32(value))


def test_logged_reads_land_once_with_their_labels(settings, running_job, served_job: str, engagement_producer,
                                                  redis_client):
    running_job(ENGAGEMENT_FEATURES_JOB)
    running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    tag = uuid.uuid4().hex[:8]
    users = [f"u-srv-{tag}-{i}" for i in range(3)]
    videos = [f"v-srv-{tag}-{i}" for i in range(4)]
    never_seen = f"v-srv-{tag}-none"  # a candidate Redis holds nothing for

    # Features: every user saw and watched every video a few seconds ago.
    start = int(time.time() * 1000) - 10_000
    for u, user in enumerate(users):
        for v, video in enumerate(videos):
            t = start + 100 * (4 * u + v)
            engagement_producer.send("Impression", user_id=user, video_id=video, event_time=t, position=v,
                                     surface="for_you")
            engagement_producer.send("Watch", user_id=user, video_id=video, event_time=t + 50,
                                     watch_ms=1_000 * (v + 1), video_duration_ms=10_000)
    engagement_producer.flush()
    newest = start + 100 * 11 + 50

    def settled() -> bool:
        values = redis_client.mget([VIDEO.key_prefix + v for v in videos] + [USER.key_prefix + u for u in users])
        return all(v is not None for v in values) and max(int.from_bytes(v[:8], "little") for v in values) == newest

    eventually(settled, timeout_s=90, message="the seeded features in Redis")

    # Logged reads: half the requests, by request id. Ids are drawn until there are 4 of each kind (with 8 random
    # ids, all-in or all-out happened 1 time in 128, and failed the test).
    sampled_ids, left_out = [], []
    for i in itertools.count():
        request_id = f"r-{tag}-{i}"
        kind = sampled_ids if sampled(request_id, SAMPLE_RATE) else left_out
        if len(kind) < 4:
            kind.append(request_id)
        if len(sampled_ids) == len(left_out) == 4:
            break
    request_ids = sampled_ids + left_out
    chosen = sampled_ids
    served_log = ServedLog.from_settings(settings, sample_rate=SAMPLE_RATE)
    client = FeatureClient.from_settings(settings, served_log=served_log)
    candidates = [*videos, never_seen]
    served = {}
    for i, request_id in enumerate(request_ids):
        user = users[i % len(users)]
        now = int(time.time() * 1000)
        served[request_id] = (user, now, client.for_request(user, candidates, now_ms=now, request_id=request_id))
        time.sleep(0.01)
    stats = served_log.close()
    assert (stats.sampled, stats.logged, stats.dropped, stats.failed) == (len(chosen), len(chosen), 0, 0), stats

    # What followed: labelled events after the first logged request, and after one of another user if any.
    first = chosen[0]
    second = next((r for r in chosen if served[r][0] != served[first][0]), None)
    plan = [(first, [("Watch", 0, 20_000, {"watch_ms": 10_000, "video_duration_ms": 10_000}),  # completed
                     ("Like", 1, 25_000, {"action": "LIKE"}),  # liked
                     ("Like", 2, -2_000, {"action": "LIKE"}),  # before the serve: not a label
                     ("Skip", 3, 5_000, {"dwell_ms": 200, "video_duration_ms": 10_000})])]  # skipped
    if second is not None:
        plan.append((second, [("Share", 0, 30_000, {"channel": "copy_link"}),  # shared
                              ("Follow", 0, 35_000, {"action": "FOLLOW"}),  # followed
                              ("Like", 3, 10_000, {"action": "UNLIKE"})]))  # not liked
    sent = []
    for request_id, events in plan:
        user, t, _ = served[request_id]
        for record, video, offset, fields in events:
            sent.append(engagement_producer.send(record, user_id=user, video_id=videos[video],
                                                 event_time=t + offset, **fields))
    engagement_producer.flush()

    # Move event time past every request's horizon on every partition of both topics, once the job has read what
    # came before: a watermark that overtook a request still in the job would leave it behind as late.
    eventually(lambda: _caught_up(settings, served_job), timeout_s=90, message="the join job reading every record")
    past = max(t for _, t, _ in served.values()) + int(WATCH_OUTCOMES.label_horizon.total_seconds() * 1000) \
        + CLOCK_SKEW_MS + 60_000
    for partition in range(ENGAGEMENT.partitions):
        engagement_producer.send("Impression", user_id=f"wm-{tag}", video_id="wm", event_time=past,
                                 partition=partition, position=0, surface="for_you")
    engagement_producer.flush()
    empty = encode_served(ServedRead(request_id=f"wm-{tag}", served_time_ms=past, user_id=f"wm-{tag}", video_ids=(),
                                     user_value=None, video_values=[], user_plan=client.plans["user"],
                                     video_plan=client.plans["video"]))  # a request without candidates: no rows
    producer = Producer(settings.kafka_producer_config())
    for partition in range(SERVED_FEATURES.partitions):
        producer.produce(SERVED_FEATURES.name, value=empty, key=b"wm", timestamp=past, partition=partition)
    assert producer.flush(30) == 0
    moved = time.monotonic()

    lake = catalog(settings)
    expected_rows = len(chosen) * len(candidates)

    def landed():
        with contextlib.suppress(Exception):  # created by the job; visible once it has committed
            table = lake.load_table(WATCH_OUTCOMES.served_table)
            rows = table.scan(row_filter=f"user_id IN ({', '.join(repr(u) for u in users)})").to_arrow()
            return rows if rows.num_rows >= expected_rows else None
        return None

    rows = eventually(landed, timeout_s=150, message=f"{expected_rows} served rows in Iceberg")
    print(f"\nserved rows visible {time.monotonic() - moved:.1f} s after the watermark passed their horizon")
    table = lake.load_table(WATCH_OUTCOMES.served_table)
    assert [str(f) for f in table.spec().fields] == ["1000: served_day: day(2)"]
    assert table.properties["fyp.training_set"] == WATCH_OUTCOMES.qualified_name

    # Exactly once: one row per logged candidate, none for a request the rate left out.
    keys = list(zip(rows.column("request_id").to_pylist(), rows.column("video_id").to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == expected_rows
    assert set(keys) == {(r, v) for r in chosen for v in candidates}
    everything = table.scan(selected_fields=("request_id", "video_id")).to_arrow()
    pairs = list(zip(everything.column(0).to_pylist(), everything.column(1).to_pylist(), strict=True))
    assert len(pairs) == len(set(pairs)), "a (request_id, video_id) twice in the table"

    # Each row holds what FeatureClient returned for it.
    by_key = {(r["request_id"], r["video_id"]): r for r in rows.to_pylist()}
    for request_id in chosen:
        user, now, request = served[request_id]
        for position, video in enumerate(candidates):
            row = by_key[(request_id, video)]
            assert (row["user_id"], row["position"]) == (user, position)
            assert round(row["served_time"].timestamp() * 1000) == now
            assert row[feature_column(USER, "event_time_ms")] == request.user.event_time_ms
            for name, value in request.user.values.items():
                assert _float(row[feature_column(USER, name)]) == _float(value), name
            matrix = request.videos[position]
            if video == never_seen:
                assert row[feature_column(VIDEO, "event_time_ms")] == 0
                assert all(row[feature_column(VIDEO, c)] is None for c in served_columns(client.plans["video"]))
                continue
            for name, value in zip(request.video_columns, matrix, strict=True):
                assert _float(row[feature_column(VIDEO, name)]) == _float(value), name

    # Labels agree with the history: every event that followed each serve within its label's window.
    history = lake.load_table(ENGAGEMENT_HISTORY)

    def history_rows():
        history.refresh()
        found = history.scan(row_filter=f"user_id IN ({', '.join(repr(u) for u in users)})").to_arrow()
        return found if set(sent) <= set(found.column("event_id").to_pylist()) else None

    events = eventually(history_rows, timeout_s=90, message="the label events in the history").to_pylist()
    predicates = {label.column: compile_predicate(label.where) for label in WATCH_OUTCOMES.labels}
    recomputed = {}
    for request_id in chosen:
        user, now, _ = served[request_id]
        for video in candidates:
            mine = [e for e in events if e["user_id"] == user and e["video_id"] == video]
            recomputed[(request_id, video)] = {
                label.column: any(
                    now <= round(e["event_time"].timestamp() * 1000) < now + label.within.total_seconds() * 1000
                    and predicates[label.column](engagement_row(**{
                        c: e[c] for c in ENGAGEMENT_COLUMNS if c != "event_time"})) for e in mine)
                for label in WATCH_OUTCOMES.labels}
    from_table = {key: {label.column: row[label.column] for label in WATCH_OUTCOMES.labels}
                  for key, row in by_key.items()}
    assert from_table == recomputed
    assert from_table[(first, videos[0])]["label_completed"] and from_table[(first, videos[1])]["label_liked"]
    assert from_table[(first, videos[3])]["label_skipped"] and not from_table[(first, videos[2])]["label_liked"]
    if second is not None:
        assert from_table[(second, videos[0])]["label_shared"] and from_table[(second, videos[0])]["label_followed"]
        assert not from_table[(second, videos[3])]["label_liked"]
    assert not any(any(from_table[(r, never_seen)].values()) for r in chosen)

    # The skew check compares each served row with the backfill at its served time: nothing unexplained. (It skips
    # rows served after the newest history event it reads for their entities: "the history has not caught up".)
    app = typer.Typer()
    training_commands.register(app)
    result = CliRunner().invoke(app, ["training-set", "verify", WATCH_OUTCOMES.name, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] + report["skipped"] == expected_rows and report["unexplained"] == 0, report


def test_serve_requests_reads_as_a_feed_would_with_the_log_on(settings, redis_client):
    """`fyp serve requests`: reads for active users (the test above left some in Redis), every one logged."""
    from fyp.commands import serving as serving_commands

    serve = typer.Typer()
    app = typer.Typer()
    app.add_typer(serve, name="serve")
    serving_commands.register(app, serve=serve)
    result = CliRunner().invoke(app, ["serve", "requests", "--duration", "1", "--candidates", "50", "--log-sample",
                                      "1.0", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    log = report["served_log"]
    assert report["requests"] > 0 and report["users"] > 0 and report["sample_rate"] == 1.0
    assert log["sampled"] == report["requests"] == log["logged"] + log["dropped"] and log["failed"] == 0, report
    for reads in ("with_log", "without_log"):
        assert report["latency_ms"][reads]["samples"] == report["requests"]
