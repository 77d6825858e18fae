"""The Pathway peer's Python steps (fyp.bench.peers.pathway_steps) and its child-process plumbing
(fyp.bench.peers.pathway_process), on plain data: no Pathway, Kafka or Redis. The flow itself runs on the real
stack in tests/integration/test_bench_pathway_peer.py."""

from __future__ import annotations

import time

import pytest

from features.engagement.video_engagement import v1
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import engagement_row
from fyp.bench.peers.pathway_process import run_pathway_process, settings_from_json, settings_to_json
from fyp.bench.peers.pathway_steps import ChangedValues, Progress, decoder, fold_rows
from fyp.config import load_settings
from schemas.registry import default_registry

EVALUATOR = FeatureEvaluator.of(v1)


def _watch(t: int, video: str = "v1", watch_ms: int = 3_000) -> tuple:
    return engagement_row(event_type="watch", event_time=t, video_id=video, watch_ms=watch_ms,
                          video_duration_ms=10_000)


ROWS = [_watch(t, watch_ms=w) for t, w in ((1_000, 3_000), (70_000, 9_000), (50_000, 1_000), (4_000_000, 500))]


@pytest.mark.parametrize("split", [0, 1, 2, 4])
def test_folding_in_commits_gives_the_reference_value(split):
    reference = EVALUATOR.new_state()
    for row in ROWS:
        EVALUATOR.update(reference, row)
    first = fold_rows(EVALUATOR, None, ROWS[:split])
    second = fold_rows(EVALUATOR, first, ROWS[split:])
    assert second.packed == EVALUATOR.pack(reference)
    assert (first.folded, second.folded) == (split, len(ROWS) - split)


def test_an_earlier_commit_keeps_its_packed_value():
    first = fold_rows(EVALUATOR, None, ROWS[:1])
    packed = first.packed
    second = fold_rows(EVALUATOR, first, ROWS[1:])
    assert second.state is first.state  # updated in place, not copied
    assert first.packed == packed != second.packed


def _payload(video: str, t: int) -> bytes:
    return default_registry().encode("Watch", {
        "event_id": "e", "event_time": t, "user_id": "u", "video_id": video, "author_id": "a", "region": "US",
        "language": "en", "session_id": "s", "watch_ms": 3_000, "video_duration_ms": 10_000})


def test_decode_drops_bad_records_and_stops_admitting_after_events():
    now = int(time.time() * 1000)
    progress = Progress(3)
    decode = decoder(EVALUATOR, progress)
    good = decode(_payload("v7", now))
    assert good is not None and good.video == "v7" and good.row[-1] is None
    assert decode(b"\x00not avro") is None
    assert decode(_payload("", now)) is None  # no video: the feature set has no key for it
    assert decode(_payload("v8", now)) is None  # past `events`: not admitted, not counted
    assert (progress.admitted, progress.dropped) == (3, 2)


class _Writer:
    def __init__(self) -> None:
        self.batches: list[dict[str, bytes]] = []

    def write(self, values):
        self.batches.append(dict(values))
        return len(values)


class _Wrapped:  # what pw.PyObjectWrapper offers the subscriber: `.value`
    def __init__(self, value) -> None:
        self.value = value


def test_each_commit_writes_the_newest_value_of_every_changed_video_once():
    writer, progress = _Writer(), Progress(10)
    sink = ChangedValues(writer, progress)
    old, new, other = (fold_rows(EVALUATOR, None, [row]) for row in ROWS[:3])
    sink.on_change(1, {"video": "v1", "folded": _Wrapped(old)}, 2, True)
    sink.on_time_end(2)
    sink.on_change(1, {"video": "v1", "folded": _Wrapped(old)}, 4, False)  # the retraction of the old value
    sink.on_change(1, {"video": "v1", "folded": _Wrapped(new)}, 4, True)
    sink.on_change(2, {"video": "v2", "folded": _Wrapped(other)}, 4, True)
    sink.on_time_end(4)
    sink.on_time_end(6)  # a commit that changed nothing writes nothing
    assert writer.batches == [{"v1": old.packed}, {"v1": new.packed, "v2": other.packed}]
    assert sink.videos == {"v1", "v2"}
    assert progress.last_write is not None


def test_the_run_is_timed_from_the_first_record_to_the_last_write():
    progress = Progress(2)
    assert progress.admit() and progress.admit()
    progress.folded = 2
    progress.wrote()
    run = progress.result(redis_writes=1, entities=1)
    assert progress.done and run.events == 2 and run.good_events == 2
    assert run.seconds == pytest.approx(progress.last_write - progress.first)
    assert run.cpu_seconds >= 0


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("FYP_HOME", str(tmp_path / "home"))
    load_settings.cache_clear()  # load_settings is cached: neither read nor leave another test's
    yield load_settings()
    load_settings.cache_clear()


def test_settings_reach_the_child_unchanged(settings):
    clustered = type(settings)(**{**settings.__dict__, "redis_cluster_nodes": (("h", 1), ("g", 2)),
                                  "kafka_brokers": (("k", 9),)})
    for s in (settings, clustered):
        assert settings_from_json(settings_to_json(s)) == s
    with pytest.raises(ValueError, match="unknown Settings fields"):
        settings_from_json(settings_to_json(settings).replace('"profile"', '"profil"'))


def test_a_missing_pathway_environment_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"scripts/install\.sh"):
        run_pathway_process(None, events=1, group_id="g", timeout_s=1, topic="t", python=tmp_path / "python")


def test_the_runner_knows_the_pathway_peer():
    from fyp.bench.peers.runner import PEERS

    assert "pathway" in PEERS


def test_a_started_clock_is_not_moved_by_the_first_record():
    progress = Progress(1)
    progress.start()
    started = progress.first
    assert progress.admit()
    assert progress.first == started
