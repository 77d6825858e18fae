"""`fyp training-set build watch_outcomes` on the real stack: events through Kafka, the features and history jobs,
then the backfill from the Iceberg history into `training.watch_outcomes`.

A few tagged users watch, like, share, follow and skip tagged videos over 16 minutes of event time (one event sent
twice, one sent late). The build must write a day-partitioned table carrying the declaration's name and
fingerprint, with exactly the spine rows whose label horizon closed; sampled rows must hold the features that a
recomputation through `fyp verify`'s reading of the history gives (fyp.lake.history.read_history: lateness flags,
Kafka order), the labels the history implies, and, for an author with no later event, what Redis holds.

The rows whose 10-minute label window closed are the oldest of these events, 12 to 16 minutes old when sent. Had
the topic's partitions seen events newer than those by more than the allowed lateness (2 min), the job would drop
them as late and every feature compared here would be null. So the test needs a topic with no events of the last
14 minutes: the file's name makes it the first integration test of `make test` (a fresh stack), and it checks
that precondition first, failing with what it found rather than comparing nothing.
"""

from __future__ import annotations

import json
import random
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import typer
from typer.testing import CliRunner

from connectors.iceberg_tables import catalog, ensure_tables
from features import ALLOWED_LATENESS, feature_set_for_entity
from featurespec.reference.evaluate import FeatureEvaluator
from fyp.commands import training as training_commands
from fyp.commands.demo_training import newest_event_time_ms
from fyp.lake.history import iso_utc, read_history
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.serving.layout import ReadPlan, decode_row
from fyp.training.skew import same
from fyp.training.table import FINGERPRINT_PROPERTY, NAME_PROPERTY, fingerprint
from schemas.tables import ENGAGEMENT_HISTORY
from schemas.topics import ENGAGEMENT
from tests.integration.conftest import eventually
from training import watch_outcomes

pytestmark = pytest.mark.integration

TS = watch_outcomes.v1
MINUTE = 60_000
LATENESS_MS = int(ALLOWED_LATENESS.total_seconds() * 1000)
HORIZON_MS = int(TS.label_horizon.total_seconds() * 1000)


def fyp_training(*args: str) -> dict:
    app = typer.Typer()
    training_commands.register(app)
    result = CliRunner().invoke(app, ["training-set", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def send_sessions(producer, tag: str, now: int) -> tuple[set[str], list[str], list[str]]:
    """Tagged users scroll tagged videos from 16 min ago to now, in event-time order, each ending with a like at
    now - 1 s (when Redis shows it, the job has read all of that user's partition before it); one event goes twice
    and one 14 minutes late. Returns the event ids sent, the users and the authors.

    The last author's video is played only in the first 2 minutes and skipped after: rows of it after that are
    rows of an author with no later event."""
    rng = random.Random(tag)
    users = [f"u-ts-{tag}-{i}" for i in range(4)]
    authors = [f"a-ts-{tag}-{i}" for i in range(4)]
    planned = []
    for user in users:
        t = now - 16 * MINUTE
        while t < now - 5_000:
            video = 8 if rng.random() < 0.2 else rng.randrange(8)
            common = {"user_id": user, "video_id": f"v-ts-{tag}-{video}",
                      "author_id": authors[3] if video == 8 else authors[video % 3],
                      "sound_id": f"s-ts-{tag}-{video % 2}", "hashtags": [f"t{tag}{video % 3}", f"t{tag}x"]}
            planned.append((t, "Impression", {"position": 0, "surface": "for_you", **common}))
            roll = rng.random()
            if video == 8:
                roll = 0.0 if t < now - 14 * MINUTE else 0.9  # completed at first, then only skipped
            if roll < 0.5:
                planned.append((t + 1_500, "Watch", {"watch_ms": 9_700 if roll < 0.3 else 4_000,
                                                     "video_duration_ms": 10_000, **common}))
            else:
                planned.append((t + 700, "Skip", {"dwell_ms": 600, "video_duration_ms": 10_000, **common}))
            if 0 < roll < 0.15:
                planned.append((t + 2_000, "Like", {"action": "LIKE", **common}))
            if 0 < roll < 0.05:
                planned.append((t + 2_500, "Share", {"channel": "copy_link", **common}))
                planned.append((t + 2_600, "Follow", {"action": "FOLLOW", **common}))
            t += rng.randrange(4_000, 12_000)
        planned.append((now - 1_000, "Like", {"action": "LIKE", "user_id": user, "video_id": f"v-ts-{tag}-0",
                                              "author_id": authors[0]}))
    sent = set()
    for t, name, fields in sorted(planned, key=lambda p: p[0]):
        sent.add(producer.send(name, event_time=t, **fields))
    twice = str(uuid.uuid4())
    for _ in range(2):
        producer.send("Watch", event_time=now - 4_000, event_id=twice, watch_ms=9_900, video_duration_ms=10_000,
                      user_id=users[0], video_id=f"v-ts-{tag}-0", author_id=authors[0], hashtags=[f"t{tag}0"])
    sent.add(twice)
    producer.flush()
    sent.add(producer.send("Like", event_time=now - 14 * MINUTE, action="LIKE", user_id=users[0],
                           video_id=f"v-ts-{tag}-1", author_id=authors[1]))  # late: the job leaves it out
    producer.flush()
    return sent, users, authors


def recomputed(events, feature_set, entity_id: str, t: int) -> dict[str, float] | None:
    """The entity as of t through fyp verify's reading of the history (`events`: its rows from
    fyp.lake.history.read_history, with lateness flags): the late ones and repeated event ids left out in Kafka
    order, those before t folded, decoded at t."""
    evaluator = FeatureEvaluator.of(feature_set)
    state, seen = evaluator.new_state(), set()
    for event in sorted(events, key=lambda e: e.position):
        if event.late or event.row[1] in seen:
            continue
        seen.add(event.row[1])
        if event.row[2] < t:
            for key in evaluator.keys(event.row):
                if key == entity_id:
                    evaluator.update(state, event.row)
    if evaluator.event_time(state) == 0:
        return None
    return decode_row(ReadPlan.of(feature_set), evaluator.pack(state), t)[0]


def columns_of(row: dict, feature_set) -> dict[str, float | None]:
    """A row's columns of one set (named `featurespec.training.feature_column(set, column)`), by column."""
    prefix = feature_set.name + "__"
    return {k.removeprefix(prefix): v for k, v in row.items() if k.startswith(prefix)}


def test_build_writes_the_closed_spine_rows_with_point_in_time_features_and_labels(
        settings, running_job, engagement_producer, redis_client):
    ensure_tables(settings)
    running_job(ENGAGEMENT_FEATURES_JOB)
    running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    tag = uuid.uuid4().hex[:8]
    now = int(time.time() * 1000)
    newest = newest_event_time_ms(settings, ENGAGEMENT.name)
    assert newest <= now - 16 * MINUTE + LATENESS_MS, (
        f"the engagement topic holds events up to {iso_utc(newest)}, newer than this test's oldest event by more "
        "than the allowed lateness: the job would drop them as late. Run it on a fresh stack (make test runs it "
        "first on one).")
    sent, users, authors = send_sessions(engagement_producer, tag, now)
    history = catalog(settings).load_table(ENGAGEMENT_HISTORY)

    def landed() -> bool:
        history.refresh()
        ids = history.scan(row_filter=f"user_id LIKE 'u-ts-{tag}%'",
                           selected_fields=("event_id",)).to_arrow().column("event_id").to_pylist()
        return set(ids) >= sent

    eventually(landed, timeout_s=120, message="every event in the history")
    user_set = feature_set_for_entity("user")
    eventually(lambda: all((v := redis_client.get(user_set.key_prefix + u)) and
                           int.from_bytes(v[:8], "little", signed=True) == now - 1_000 for u in users),
               timeout_s=60, message="each user's last like in Redis")

    result = fyp_training("build", TS.name)
    assert result["table"] == "training.watch_outcomes" and result["rows"] > 0

    built = catalog(settings).load_table(TS.table)
    assert [str(f.transform) for f in built.spec().fields] == ["day"]
    assert built.properties[NAME_PROPERTY] == "watch_outcomes.v1"
    assert built.properties[FINGERPRINT_PROPERTY] == fingerprint(TS)
    rows = built.scan().to_arrow()
    # A rebuild of today replaces today's rows: the same rows again, each event once.
    today = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))
    again = fyp_training("build", TS.name, "--since", today, "--until", today)
    built.refresh()
    rebuilt = built.scan(selected_fields=("event_id",)).to_arrow()
    assert rebuilt.num_rows == pc.count_distinct(rebuilt.column("event_id")).as_py()
    assert set(rows.column("event_id").to_pylist()) <= set(rebuilt.column("event_id").to_pylist())
    if again["history_snapshot_id"] == result["history_snapshot_id"]:  # nothing landed in between
        assert rebuilt.num_rows == rows.num_rows

    # Exactly the distinct impressions of the history snapshot read whose label horizon closed.
    read = history.scan(snapshot_id=result["history_snapshot_id"],
                        selected_fields=("event_id", "event_type", "event_time")).to_arrow()
    times = read.column("event_time").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy() // 1000
    newest = int(times.max())
    impressions = read.filter(pc.equal(read.column("event_type"), "impression"))
    impression_ms = impressions.column("event_time").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    closed = {e for e, t in zip(impressions.column("event_id").to_pylist(), (impression_ms // 1000).tolist(),
                                strict=True) if t + HORIZON_MS <= newest - LATENESS_MS}
    assert set(rows.column("event_id").to_pylist()) == closed and result["rows"] == len(closed)

    # Sampled rows: features as fyp verify's reading of the history gives them, labels as the history implies.
    mine = rows.filter(pc.starts_with(rows.column("user_id"), f"u-ts-{tag}")).to_pylist()
    assert len(mine) > 100
    everything = history.scan(row_filter=f"user_id LIKE 'u-ts-{tag}%'").to_arrow().to_pylist()
    with_values = rows.filter(pc.is_valid(rows.column("video_engagement__plays_24h"))).to_pylist()
    rng = random.Random(0)
    sampled = rng.sample(mine, 8) + rng.sample(with_values, min(8, len(with_values)))
    entities = {"video": "video_id", "user": "user_id", "author": "author_id"}
    read = {entity: read_history(history, feature_set_for_entity(entity), sorted({r[c] for r in sampled}))
            for entity, c in entities.items()}  # one pair of scans per set
    valued = 0
    for row in sampled:
        t = int(row["event_time"].timestamp() * 1000)
        for entity, column in entities.items():
            feature_set = feature_set_for_entity(entity)
            want = recomputed(read[entity][row[column]], feature_set, row[column], t)
            got = columns_of(row, feature_set)
            if want is None:
                assert all(v is None for v in got.values()), (entity, row["event_id"])
            else:
                assert all(same(got[c], want[c]) for c in want), (entity, row["event_id"], got, want)
                valued += 1
    assert valued > 0, "every sampled row had null features: nothing was compared"
    for row in rng.sample(mine, 20):
        t = int(row["event_time"].timestamp() * 1000)
        for label in TS.labels:
            expected = any(
                e["user_id"] == row["user_id"] and e["video_id"] == row["video_id"]
                and t <= int(e["event_time"].timestamp() * 1000) < t + HORIZON_MS and _matches(label, e)
                for e in everything)
            assert row[label.column] == expected, (label.name, row["event_id"])

    # The quiet author, at its rows after its last counted event: Redis still holds that state (decoded at the row's
    # time), or holds nothing when the job found those events late, and then the row's author columns are null.
    author = feature_set_for_entity("author")
    value = redis_client.get(author.key_prefix + authors[3])
    last = int.from_bytes(value[:8], "little", signed=True) if value else 0
    idle = [r for r in mine if r["author_id"] == authors[3] and int(r["event_time"].timestamp() * 1000) > last]
    assert idle, "no row of the quiet author after its last counted event"
    for row in idle:
        got = columns_of(row, author)
        if value is None:
            assert all(v is None for v in got.values()), row["event_id"]
            continue
        decoded, _ = decode_row(ReadPlan.of(author), value, int(row["event_time"].timestamp() * 1000))
        assert all(same(got[c], decoded[c]) for c in decoded), row["event_id"]
    assert np.isfinite(result["rows_per_s"]) and result["peak_rss_mb"] > 0


def _matches(label, event: dict) -> bool:
    from featurespec.reference.sql import compile_predicate, engagement_row

    fields = {k: v for k, v in event.items() if k in ("event_type", "watch_ms", "video_duration_ms", "dwell_ms",
                                                       "action")}
    return compile_predicate(label.where)(engagement_row(**fields))
