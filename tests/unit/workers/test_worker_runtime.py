"""The worker runtime's pure parts (workers/runtime.py): classification, back-off, consumer settings, the periodic
loop's schedule on an injected clock, and signals; and the transcoder's and moderator's handlers on plain records.
The consumer loop itself runs against the broker in tests/integration/test_worker_runtime.py."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

import pytest

from fyp.media.keys import InvalidKey
from schemas.registry import default_registry
from workers.dead_letters import Poison, accept
from workers.moderator import POISON as MODERATOR_POISON
from workers.moderator import Topics as ModeratorTopics
from workers.moderator import handler as moderator_handler
from workers.runtime import Backoff, ConsumerConfig, classify, run_periodic, stop_on_signals
from workers.transcoder import POISON as TRANSCODER_POISON
from workers.transcoder import Topics as TranscoderTopics
from workers.transcoder import failed_record
from workers.transcoder import handler as transcoder_handler


@pytest.mark.parametrize(
    ("exc", "poison", "reason"),
    [
        (Poison("undecodable:bad_marker"), (), "undecodable:bad_marker"),  # the handler named the reason
        (KeyError("source_key"), TRANSCODER_POISON, "malformed:KeyError"),
        (InvalidKey("../x"), TRANSCODER_POISON, "bad_key"),
        (FileNotFoundError("gone"), MODERATOR_POISON, "missing_object"),
        (FileNotFoundError("gone"), TRANSCODER_POISON, None),  # the transcoder's disk, not the request
        (ConnectionError("s3 down"), MODERATOR_POISON, None),
        (TimeoutError(), TRANSCODER_POISON, None),
        (ValueError("x"), (), None),  # no poison types: only Poison dead-letters
    ],
)
def test_classify(exc: BaseException, poison: tuple[type[BaseException], ...], reason: str | None) -> None:
    assert classify(exc, poison) == reason


def test_backoff_doubles_to_its_cap_and_starts_over() -> None:
    policy = Backoff()
    waits, delay = [], None
    for _ in range(8):
        delay = policy.next(delay)
        waits.append(delay)
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.next(None) == 1


@pytest.mark.parametrize(("initial", "cap"), [(0, 1), (-1, 1), (2, 1)])
def test_backoff_rejects_nonsense(initial: float, cap: float) -> None:
    with pytest.raises(ValueError, match="initial_s <= max_s"):
        Backoff(initial_s=initial, max_s=cap)


def test_consumer_settings_commit_manually_and_let_overrides_win() -> None:
    config = ConsumerConfig(topics=("fyp.uploads.v1",), group_id="fyp-transcoder",
                            consumer_overrides={"max.poll.interval.ms": 7000})
    settings = config.consumer_settings({"bootstrap.servers": "b:9092", "sasl.username": "u"})
    assert settings == {"bootstrap.servers": "b:9092", "sasl.username": "u", "group.id": "fyp-transcoder",
                        "enable.auto.commit": False, "auto.offset.reset": "earliest", "max.poll.interval.ms": 7000}


def _takedown() -> bytes:
    return _encode("Takedown", {"event_id": "e1", "event_time": 1, "video_id": "v1", "author_id": "a1",
                                "reason": "dmca", "notice_id": "n1"})


def test_accept_hands_over_skips_or_poisons() -> None:
    assert accept(_takedown(), "Takedown")["video_id"] == "v1"
    assert accept(_takedown(), "TranscodeRequested") is None
    assert accept(_takedown(), "Takedown", skip=lambda e: e.record["reason"] == "dmca") is None
    with pytest.raises(Poison, match="undecodable:bad_marker") as caught:
        accept(b"junk", "TranscodeRequested")
    assert caught.value.reason == "undecodable:bad_marker"


class FakeTime:
    """A clock that only moves when a pass or a wait spends time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _passes(fake: FakeTime, durations: list[float | Exception], stop: threading.Event):
    """A step that spends `durations[i]` on pass i (or raises it) and sets `stop` during the last; and the list
    of the times at which passes started."""
    starts: list[float] = []

    def step() -> None:
        starts.append(fake.now)
        spent = durations[len(starts) - 1]
        if len(starts) == len(durations):
            stop.set()
        if isinstance(spent, Exception):
            raise spent
        fake.now += spent

    return step, starts


def test_periodic_keeps_a_fixed_rate_and_starts_an_overrun_pass_at_once() -> None:
    fake, stop = FakeTime(), threading.Event()
    step, starts = _passes(fake, [2.0, 15.0, 1.0, 0.0], stop)
    assert run_periodic(step, every_s=10, stop=stop, clock=fake.clock, wait=fake.wait) == 4
    assert starts == [0.0, 10.0, 25.0, 35.0]  # the 15 s pass overran: the next started right after it
    assert fake.waits == [8.0, 9.0]  # and none after the pass during which `stop` was set


def test_periodic_logs_a_failed_pass_and_retries_at_the_next(caplog: pytest.LogCaptureFixture) -> None:
    fake, stop = FakeTime(), threading.Event()
    step, starts = _passes(fake, [1.0, ConnectionError("redis restarting"), 1.0], stop)
    assert run_periodic(step, every_s=5, stop=stop, clock=fake.clock, wait=fake.wait) == 3
    assert starts == [0.0, 5.0, 10.0]
    assert "pass failed" in caplog.text and "redis restarting" in caplog.text


def test_periodic_once_runs_one_pass_and_its_failure_propagates() -> None:
    fake = FakeTime()
    step, starts = _passes(fake, [3.0, 3.0], threading.Event())
    assert run_periodic(step, every_s=5, once=True, clock=fake.clock, wait=fake.wait) == 1
    assert starts == [0.0] and fake.waits == []
    failing, _ = _passes(fake, [ConnectionError("catalog down")], threading.Event())
    with pytest.raises(ConnectionError, match="catalog down"):
        run_periodic(failing, every_s=5, once=True, clock=fake.clock, wait=fake.wait)


def test_periodic_rejects_a_nonpositive_interval() -> None:
    with pytest.raises(ValueError, match="every_s must be positive"):
        run_periodic(lambda: None, every_s=0)


def test_a_signal_during_the_wait_ends_the_periodic_loop() -> None:
    """Real time and a real SIGTERM: the wait between passes is cut short, and the old handler comes back."""
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    try:
        passes = run_periodic(lambda: None, every_s=30)
    finally:
        timer.cancel()
    assert passes == 1
    assert time.monotonic() - started < 5  # not the 30 s to the next pass
    assert signal.getsignal(signal.SIGTERM) is before


def test_stop_on_signals_only_sets_the_event_off_the_main_thread() -> None:
    seen: list[bool] = []

    def off_main() -> None:
        with stop_on_signals(threading.Event()) as stop:
            seen.append(stop.is_set())

    thread = threading.Thread(target=off_main)
    thread.start()
    thread.join()
    assert seen == [False]


@dataclass(frozen=True)
class Record:
    """The one part of a confluent_kafka Message the workers' handlers read."""

    payload: bytes

    def value(self) -> bytes:
        return self.payload


REQUEST = {"event_id": "e1", "event_time": 1, "video_id": "v1", "author_id": "alice", "attempt": 1,
           "source_key": "uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e", "stage": "playable"}
COMPLETED = {"event_id": "e2", "event_time": 1, "video_id": "v1", "author_id": "alice", "renditions": [],
             "hls_master_key": "k", "dash_manifest_key": "k", "cover_key": "k", "audio_key": None,
             "audio_fingerprint": None, "duration_ms": 1, "elapsed_ms": 1, "stage": "playable"}


class SourceGone:
    """A transcoder whose source is never there: the handler's wiring, without S3 or ffmpeg."""

    def handle(self, request):
        return "TranscodeFailed", failed_record(request, "source_missing")


class Verdicts:
    """A moderator that approves everything and remembers what it judged."""

    def __init__(self) -> None:
        self.judged: list[str] = []

    def moderate(self, event):
        self.judged.append(event["event_id"])
        return {"event_id": "m1", "event_time": 1, "video_id": event["video_id"], "author_id": event["author_id"],
                "verdict": "APPROVE", "reasons": [], "nsfw_score": None, "ocr_text": None, "music_id": None,
                "near_duplicate_of": None}


def test_the_transcoder_handler_emits_its_result_keyed_by_video_and_skips_other_records() -> None:
    handle = transcoder_handler(SourceGone(), TranscoderTopics(results="fyp.results.v1"))
    [output] = handle(Record(_encode("TranscodeRequested", REQUEST)))
    assert (output.topic, output.key) == ("fyp.results.v1", b"v1")
    result = default_registry().decode(output.value)
    assert (result.record_name, result.record["reason"]) == ("TranscodeFailed", "source_missing")
    assert handle(Record(_takedown())) == []
    with pytest.raises(Poison, match="bad_id:video_id"):
        handle(Record(_encode("TranscodeRequested", {**REQUEST, "video_id": "v:1"})))


def test_the_moderator_handler_judges_only_the_playable_stage() -> None:
    moderator = Verdicts()
    handle = moderator_handler(moderator, ModeratorTopics(output="fyp.results.v1"))
    assert handle(Record(_encode("TranscodeCompleted", {**COMPLETED, "stage": "full"}))) == []
    [output] = handle(Record(_encode("TranscodeCompleted", COMPLETED)))
    assert (output.topic, output.key) == ("fyp.results.v1", b"v1")
    assert default_registry().decode(output.value).record["verdict"] == "APPROVE"
    assert moderator.judged == ["e2"]
    with pytest.raises(Poison, match="undecodable"):
        handle(Record(b""))


def _encode(name: str, record: dict) -> bytes:
    return default_registry().encode(name, record)
