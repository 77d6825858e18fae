"""The traffic generator: byte-exact encoding, statistical shape, faults, and the producer loop."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import typer
from confluent_kafka import KafkaError, KafkaException
from typer.testing import CliRunner

import fyp.commands.produce as produce_command
from fyp.traffic import TrafficConfig, TrafficGenerator, generate_batches, generate_events
from fyp.traffic.catalog import TOPIC_TAGS, zipf_cdf
from fyp.traffic.ids import RunIds
from fyp.traffic.model import COMMENT, KIND_TYPES, LIKE, WATCH, TrafficModel
from fyp.traffic.producer import ProducePlan, ProducerError, produce
from fyp.traffic.vocab import COMMENTS, HASHTAGS
from schemas.registry import EVENT_TYPES, SCHEMA_DIR, SchemaRegistry, default_registry
from udfs.envelope import ENGAGEMENT_ROW_FIELDS, to_engagement_row
from udfs.sentiment import comment_sentiment

RUN_ID = "5f0c2a9e-1b7d-4c3e-8a6f-000000000000"
NOW = 1_700_000_000_000
SMALL = TrafficConfig(users=2_000, videos=5_000)
NAMES = [name for name, _ in ENGAGEMENT_ROW_FIELDS]


def _generator(config: TrafficConfig = SMALL, seed: int = 1) -> TrafficGenerator:
    return TrafficGenerator(config, seed, run_id=RUN_ID, clock=lambda: NOW)


# --- encoding -----------------------------------------------------------------------------------------


def test_fast_encoder_matches_fastavro_byte_for_byte_for_every_event_type() -> None:
    registry = default_registry()
    fast, readable = _generator(), _generator()
    seen: Counter[str] = Counter()
    for _ in range(4):
        batch, records = fast.next_batch(1_000), readable.next_records(1_000)
        assert len(batch.pairs) == len(records)
        for (key, value), (name, record) in zip(batch.pairs, records, strict=True):
            assert value == registry.encode(name, record), f"{name} differs: {record}"
            assert key == record["user_id"].encode()
            seen[registry.latest(name).event_type] += 1
    assert set(seen) == set(EVENT_TYPES), "the sample must cover every event type"


def test_every_payload_decodes_and_counts_add_up() -> None:
    registry = default_registry()
    batch = _generator().next_batch(2_000)
    decoded = Counter(registry.decode(value).event_type for _, value in batch.pairs)
    assert decoded == Counter(batch.counts)
    assert set(decoded) <= set(EVENT_TYPES)


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    first = [b.pairs for b in _take(generate_batches(SMALL, 3, run_id=RUN_ID, clock=lambda: NOW), 2)]
    again = [b.pairs for b in _take(generate_batches(SMALL, 3, run_id=RUN_ID, clock=lambda: NOW), 2)]
    other = [b.pairs for b in _take(generate_batches(SMALL, 4, run_id=RUN_ID, clock=lambda: NOW), 2)]
    assert first == again
    assert first != other


def _take(iterator: Any, n: int) -> list[Any]:
    return [next(iterator) for _ in range(n)]


def test_generate_events_yields_encodable_records_with_unique_ids() -> None:
    registry = default_registry()
    events = _take(generate_events(SMALL, 5, clock=lambda: NOW), 3_000)
    assert len({r["event_id"] for _, r in events}) == len(events)
    for name, record in events[:500]:
        assert registry.decode(registry.encode(name, record)).record == record


def test_batch_head_recounts() -> None:
    batch = _generator().next_batch(100)
    head = batch.head(7)
    assert len(head.pairs) == 7 and sum(head.counts.values()) == 7
    assert head.counts["impression"] >= 1


# --- statistical shape ------------------------------------------------------------------------------


def _blocks(config: TrafficConfig, views: int, seed: int = 11) -> tuple[TrafficModel, list[Any]]:
    model = TrafficModel(config, seed)
    return model, [model.next_block(2_000, NOW) for _ in range(views // 2_000)]


def test_video_popularity_is_zipf() -> None:
    config = TrafficConfig(users=5_000, videos=10_000, fresh_traffic_fraction=0.0, new_video_fraction=0.0)
    _, blocks = _blocks(config, 40_000)
    views = np.concatenate([np.asarray(b.video) for b in blocks])
    top = config.videos // 100
    expected = zipf_cdf(config.videos, config.zipf_exponent)[top - 1]  # ~0.6 for s = 1.1
    assert abs(np.mean(views < top) - expected) < 0.02
    assert np.mean(views == 0) > 10 * np.mean(views == 100)


def test_completion_depends_on_length_and_drives_likes() -> None:
    model, blocks = _blocks(SMALL, 40_000)
    complete, short, liked = [], [], []
    for block in blocks:
        durations = model.catalog.duration_ms[block.video]
        likes = {block.event_view[i] for i, k in enumerate(block.event_kind) if k == LIKE}
        watched = {block.event_view[i] for i, k in enumerate(block.event_kind) if k == WATCH}
        for v in sorted(watched):
            complete.append(block.watch_ms[v] == durations[v])
            short.append(durations[v] < 15_000)
            liked.append(v in likes)
    complete_, short_, liked_ = np.array(complete), np.array(short), np.array(liked)
    assert complete_[short_].mean() > complete_[~short_].mean() + 0.1
    assert liked_[complete_].mean() > 2 * liked_[~complete_].mean()
    assert 0.02 < liked_.mean() < 0.15


def test_comment_sentiment_tracks_how_much_the_viewer_liked_the_video() -> None:
    model, blocks = _blocks(SMALL, 100_000)  # comments after partial watches are rare
    score = {i: comment_sentiment(text) for i, (text, _) in enumerate(COMMENTS)}
    on_complete, on_partial, by_quality = [], [], []
    for block in blocks:
        durations = model.catalog.duration_ms[block.video]
        for i, kind in enumerate(block.event_kind):
            if kind != COMMENT:
                continue
            v = block.event_view[i]
            sentiment = score[block.comment[v]]
            (on_complete if block.watch_ms[v] == durations[v] else on_partial).append(sentiment)
            by_quality.append((model.catalog.quality[block.video[v]], sentiment))
    assert len(on_complete) > 100 and len(on_partial) > 20
    assert np.mean(on_complete) > np.mean(on_partial) + 0.05
    quality, sentiment = np.array(by_quality).T
    assert np.corrcoef(quality, sentiment)[0, 1] > 0.1


def _interest_views(config: TrafficConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per view: is the video in the viewer's interest topics, was it completed, was it liked."""
    model, blocks = _blocks(config, 60_000)
    catalog, match, complete, liked = model.catalog, [], [], []
    for block in blocks:
        users, videos = np.asarray(block.user), np.asarray(block.video)
        topics = catalog.author_topic[catalog.author[videos]]
        match.append((catalog.interests[users] == topics[:, None]).any(axis=1))
        complete.append(np.asarray(block.watch_ms) == catalog.duration_ms[videos])
        likes = np.zeros(len(videos), dtype=bool)
        likes[[block.event_view[i] for i, k in enumerate(block.event_kind) if k == LIKE]] = True
        liked.append(likes)
    return np.concatenate(match), np.concatenate(complete), np.concatenate(liked)


def test_users_engage_with_their_interest_topics() -> None:
    match, complete, liked = _interest_views(SMALL)
    # Exposure: most views come from the viewer's interests (85 % by draw, plus popular videos that match).
    assert match.mean() > 0.8
    # Taste: in-interest views complete and get liked much more often, so engagement concentrates further:
    # a user's positives (their recent-positives history) name their interests.
    assert complete[match].mean() > 1.8 * complete[~match].mean()
    assert liked[match].mean() > 4 * liked[~match].mean()
    assert match[liked].mean() > 0.95
    # Without interest traffic the same users see their topics only as often as global popularity implies.
    untargeted, _, _ = _interest_views(TrafficConfig(users=2_000, videos=5_000, interest_traffic_fraction=0.0))
    assert untargeted.mean() < match.mean() - 0.5


def test_a_videos_topic_is_its_authors_and_its_first_hashtag() -> None:
    catalog = TrafficModel(SMALL, 3).catalog
    topics = catalog.author_topic[catalog.author]
    for index in range(0, 5_000, 97):
        assert catalog.video(index).hashtags[0] == HASHTAGS[TOPIC_TAGS[topics[index]]]
    by_author = {}
    for author, topic in zip(catalog.author.tolist(), topics.tolist(), strict=True):
        assert by_author.setdefault(author, topic) == topic
    assert len(set(topics.tolist())) == len(TOPIC_TAGS)
    assert catalog.interests.shape == (SMALL.users, 3)


def test_sessions_are_ordered_feeds_of_one_user() -> None:
    _, blocks = _blocks(SMALL, 10_000)
    last_position: dict[int, int] = {}
    owner: dict[int, int] = {}
    for block in blocks:
        for v, session in enumerate(block.session):
            assert owner.setdefault(session, block.user[v]) == block.user[v]
            assert block.position[v] == last_position.get(session, -1) + 1
            last_position[session] = block.position[v]
    assert 100 < len(owner) < 2_000


def test_catalog_grows_and_new_videos_get_traffic() -> None:
    model, blocks = _blocks(TrafficConfig(users=1_000, videos=1_000, new_video_fraction=0.01), 20_000)
    assert model.video_count > 1_100
    assert sum(v >= 1_000 for b in blocks for v in b.video) > 100


def test_event_times_are_now_with_jitter_or_late() -> None:
    _, blocks = _blocks(TrafficConfig(users=1_000, videos=1_000, late_fraction=0.3), 10_000)
    times = np.array([t for b in blocks for t in b.event_time])
    late = times < NOW - 60_000
    assert abs(late.mean() - 0.3) < 0.05
    assert times.max() <= NOW + 20  # a few ms of in-view ordering offsets at most
    assert times[~late].min() >= NOW - 250
    assert times.min() >= NOW - 30 * 60_000 - 250  # late_by on top of the jitter


# --- faults -----------------------------------------------------------------------------------------


def test_malformed_events_are_exactly_the_error_rows() -> None:
    config = TrafficConfig(users=1_000, videos=2_000, malformed_fraction=0.2)
    batch = _generator(config).next_batch(2_000)
    errors = Counter(
        row[-1].split(":")[0]
        for row in (to_engagement_row(v, NOW) for _, v in batch.pairs)
        if row[-1] is not None
    )
    assert sum(errors.values()) == batch.counts["malformed"]
    assert set(errors) == {"undecodable", "missing_id", "negative_duration"}
    assert batch.counts["malformed"] / len(batch.pairs) == pytest.approx(0.2, abs=0.03)


def test_records_carry_field_faults_but_not_byte_faults() -> None:
    config = TrafficConfig(users=1_000, videos=2_000, malformed_fraction=0.5)
    records = _generator(config).next_records(500)
    bad = [r for _, r in records if "" in (r["event_id"], r["user_id"], r["video_id"])]
    negative = [r for _, r in records if min(r.get("watch_ms", 0), r.get("dwell_ms", 0)) < 0]
    assert bad and negative


# --- configuration and ids -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 0}, "users must be >= 1"),
        ({"late_fraction": 1.5}, r"late_fraction must be in \[0, 1\]"),
        ({"zipf_exponent": 0}, "zipf_exponent"),
        ({"jitter": timedelta(seconds=-1)}, "jitter"),
        ({"authors": 0}, "authors"),
    ],
)
def test_config_validates_itself(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrafficConfig(**kwargs)


def test_run_ids_are_uuids() -> None:
    ids = RunIds(run_id=RUN_ID)
    assert ids.event_id(2**40) == "5f0c2a9e-1b7d-4c3e-8a6f-010000000000"
    with pytest.raises(ValueError, match="UUID"):
        RunIds(run_id="not-a-uuid")


def test_generate_and_encode_rate_is_well_above_target() -> None:
    # Guard against big regressions only; the real figure (~400k/s) is in docs/EVENTS.md.
    generator = TrafficGenerator(TrafficConfig(users=10_000, videos=20_000), 9)
    generator.next_batch(1_000)  # warm the caches
    start, n = time.process_time(), 0
    while n < 40_000:
        n += len(generator.next_batch(1_000).pairs)
    assert n / (time.process_time() - start) > 60_000


# --- producer loop (fake Kafka) --------------------------------------------------------------------


class FakeProducer:
    """The part of confluent_kafka.Producer that produce() uses."""

    def __init__(self, config: dict[str, Any], topics: tuple[str, ...] = ("fyp.engagement.v1",)) -> None:
        self.config = config
        self.topics = topics
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.timestamps: list[int] = []
        self.reachable = True

    def list_topics(self, timeout: float) -> Any:
        if not self.reachable:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return type("Metadata", (), {"topics": dict.fromkeys(self.topics)})()

    def produce(self, topic: str, value: bytes, key: bytes, timestamp: int = 0) -> None:
        self.sent.append((topic, key, value))
        self.timestamps.append(timestamp)

    def poll(self, timeout: float = 0) -> int:
        if timeout:
            time.sleep(min(timeout, 0.01))
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def test_produce_stops_at_max_events_with_exact_counts() -> None:
    made: list[FakeProducer] = []

    def factory(config: dict[str, Any]) -> FakeProducer:
        made.append(FakeProducer(config))
        return made[-1]

    report = produce(
        _generator(),
        ProducePlan(max_events=5_000),
        client_config={"bootstrap.servers": "x"},
        producer_factory=factory,
    )
    fake = made[0]
    assert (report.produced, report.failed, len(fake.sent)) == (5_000, 0, 5_000)
    assert sum(report.by_type.values()) == 5_000
    assert fake.config["enable.idempotence"] is True and fake.config["acks"] == "all"
    assert {topic for topic, _, _ in fake.sent} == {"fyp.engagement.v1"}
    assert all(key.startswith(b"u") for _, key, _ in fake.sent)
    # The Kafka timestamp is each event's own event time (jobs that watermark on Kafka timestamps see event time).
    registry = default_registry()
    for (_, _, value), timestamp in list(zip(fake.sent, fake.timestamps, strict=True))[:200]:
        assert timestamp == registry.decode(value).record["event_time"]


def test_produce_paces_to_the_rate() -> None:
    plan = ProducePlan(rate=20_000, max_events=3_000)
    start = time.monotonic()
    report = produce(_generator(), plan, client_config={}, producer_factory=FakeProducer)
    assert time.monotonic() - start >= 0.1  # 3000 events at 20k/s take at least 0.15 s
    assert report.produced == 3_000


def test_produce_reports_an_unreachable_broker_and_a_missing_topic() -> None:
    def unreachable(config: dict[str, Any]) -> FakeProducer:
        fake = FakeProducer(config)
        fake.reachable = False
        return fake

    with pytest.raises(ProducerError, match="cannot reach Kafka"):
        produce(_generator(), ProducePlan(max_events=1), client_config={}, producer_factory=unreachable)
    with pytest.raises(ProducerError, match="does not exist"):
        produce(
            _generator(),
            ProducePlan(max_events=1),
            client_config={},
            producer_factory=lambda c: FakeProducer(c, topics=()),
        )


def test_plan_needs_a_limit() -> None:
    with pytest.raises(ValueError, match="duration, max_events"):
        ProducePlan(rate=10)


def test_cli_prints_one_json_object(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(produce_command, "load_settings", lambda: _Settings())
    real = produce_command.produce
    monkeypatch.setattr(
        produce_command, "produce", lambda *a, **k: real(*a, **k, producer_factory=FakeProducer)
    )
    app = typer.Typer()
    produce_command.register(app)
    app.command("other")(lambda: None)  # a one-command typer app would drop the command name
    result = CliRunner().invoke(app, ["produce", "--events", "1200", "--rate", "0", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["produced"] == 1_200 and out["failed"] == 0 and out["seed"] == 3
    assert set(out["by_type"]) <= set(EVENT_TYPES) | {"malformed"}
    assert {"seconds", "rate"} <= set(out)


class _Settings:
    def kafka_client_config(self) -> dict[str, str]:
        return {"bootstrap.servers": "127.0.0.1:1"}


def test_kind_types_cover_every_event_type() -> None:
    assert set(KIND_TYPES) == set(EVENT_TYPES)


def test_encoder_refuses_a_schema_it_was_not_written_for(tmp_path: Any) -> None:
    for path in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(path, tmp_path / path.name)
    watch = json.loads((tmp_path / "Watch.avsc").read_text())
    watch["fields"].append({"name": "muted", "type": "boolean", "default": False})
    (tmp_path / "Watch.avsc").write_text(json.dumps(watch))
    with pytest.raises(RuntimeError, match=r"Watch\.avsc fields .* no longer match"):
        TrafficGenerator(SMALL, 1, registry=SchemaRegistry.load(tmp_path))


def test_impressions_carry_the_arms_a_block_sets_byte_for_byte_as_fastavro() -> None:
    import dataclasses

    from fyp.traffic.encoder import FastEncoder
    from fyp.traffic.model import IMPRESSION
    from fyp.traffic.records import RecordRenderer

    registry, ids = default_registry(), RunIds(run_id=RUN_ID)
    model = TrafficModel(SMALL, 5)
    block = model.next_block(500, NOW)
    choices = [(), ("ranker_v2:control",), ("ranker_v2:treatment", "feed_ui:big_font")]
    block = dataclasses.replace(block, arms=[choices[v % 3] for v in range(len(block.user))])
    batch = FastEncoder(registry, model.catalog, ids, seed=5).encode(block)
    records = list(RecordRenderer(model.catalog, ids, registry).render(block))
    assert [value for _, value in batch.pairs] == [registry.encode(name, record) for name, record in records]
    seen = set()
    for i, (_, value) in enumerate(batch.pairs):
        if block.event_kind[i] == IMPRESSION and not block.event_fault[i]:
            row = dict(zip(NAMES, to_engagement_row(value, NOW), strict=True))
            assert row["arms"] == list(choices[block.event_view[i] % 3]) and row["error"] is None
            seen.add(tuple(row["arms"]))
    assert seen == set(choices)
    with pytest.raises(ValueError, match="one tuple per view"):
        dataclasses.replace(block, arms=[()])
