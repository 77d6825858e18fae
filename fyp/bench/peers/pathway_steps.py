"""The Python steps of the Pathway peer (fyp.bench.peers.pathway_flow), kept free of `pathway` imports so that
they run, and are tested, in the tools environment too: admitting and decoding records, folding a video's rows,
and writing each Pathway commit's changed values to Redis.

>>> from features.engagement.video_engagement import v1
>>> from featurespec.reference.evaluate import FeatureEvaluator
>>> from featurespec.reference.sql import engagement_row
>>> evaluator = FeatureEvaluator.of(v1)
>>> row = engagement_row(event_type="watch", event_time=1_000, video_id="v1", watch_ms=3_000,
...                      video_duration_ms=10_000)
>>> folded = fold_rows(evaluator, None, [row])
>>> folded.packed == evaluator.pack(folded.state), folded.folded
(True, 1)
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fyp.bench.peers.result import PeerRun
from udfs.envelope import to_engagement_row

__all__ = ["ChangedValues", "Decoded", "FoldedVideo", "Folder", "Progress", "cpu_seconds", "fold_rows"]

Row = tuple[Any, ...]


class Folder(Protocol):
    """The four methods of a compiled feature set the peer uses (FeatureEvaluator, or a faster one like it)."""

    def key(self, row: Row) -> str | None: ...
    def new_state(self) -> Any: ...
    def update(self, state: Any, row: Row) -> None: ...
    def pack(self, state: Any) -> bytes: ...


class Writer(Protocol):
    def write(self, values: Mapping[str, bytes]) -> int: ...


def cpu_seconds() -> float:
    """CPU time of this process (every thread: Pathway's engine threads too) and of its waited-for children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Progress:
    """Counts the records of one run and times it, from `start()` (else the first record decoded) to the last
    Redis write.

    events: records to admit; later ones are consumed but neither decoded nor counted (the bench topic holds
        exactly `events`, so none are normally left).
    """

    def __init__(self, events: int) -> None:
        self.events = events
        self.admitted = self.dropped = self.folded = 0
        self.first: float | None = None  # perf_counter() at start(), or when the first record was decoded
        self.first_cpu = 0.0
        self.last_write: float | None = None  # perf_counter() after the last Redis pipeline
        self.last_write_cpu = 0.0

    def start(self) -> None:
        """Start the clock now: before the engine connects to Kafka, because Pathway hands Python no record before
        the commit holding it closes, which in static mode is after the whole topic was read."""
        self.first, self.first_cpu = time.perf_counter(), cpu_seconds()

    def admit(self) -> bool:
        if self.admitted >= self.events:
            return False
        if self.first is None:
            self.start()
        self.admitted += 1
        return True

    def wrote(self) -> None:
        self.last_write, self.last_write_cpu = time.perf_counter(), cpu_seconds()

    @property
    def done(self) -> bool:
        return self.dropped + self.folded >= self.events

    def result(self, *, redis_writes: int, entities: int) -> PeerRun:
        first = self.first or 0.0
        return PeerRun(events=self.admitted, good_events=self.folded,
                       seconds=(self.last_write or self.first or 0.0) - first,
                       cpu_seconds=max(self.last_write_cpu - self.first_cpu, 0.0),
                       redis_writes=redis_writes, entities=entities)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A good record: its video and its engagement row (udfs.envelope's tuple, `error` last and None)."""

    video: str
    row: Row


def decoder(folder: Folder, progress: Progress) -> Callable[[bytes], Decoded | None]:
    """Kafka value -> `Decoded`, or None for a record past `events` or a bad one (counted as dropped: the
    job dead-letters it) or one of no video (e.g. an event the feature set does not count)."""
    key = folder.key

    def decode(value: bytes) -> Decoded | None:
        if not progress.admit():
            return None
        row = to_engagement_row(value, int(time.time() * 1000))
        video = key(row) if row[-1] is None else None
        if video is None:
            progress.dropped += 1
            return None
        return Decoded(video, row)

    return decode


@dataclass(frozen=True, slots=True)
class FoldedVideo:
    """What the reducer keeps per video: the fold state, and its packed value as of this fold.

    `state` is the same object from one fold to the next (updated in place, no copy per commit), so read a
    commit's value from `packed`, which never changes.
    """

    state: Any
    packed: bytes
    folded: int  # rows this fold added


def fold_rows(folder: Folder, previous: FoldedVideo | None, rows: Iterable[Row]) -> FoldedVideo:
    """Fold `rows` (one video's, in order) into the video's state and pack the result (`folded`: how many)."""
    state = folder.new_state() if previous is None else previous.state
    update = folder.update
    count = 0
    for row in rows:
        update(state, row)
        count += 1
    return FoldedVideo(state=state, packed=folder.pack(state), folded=count)


class ChangedValues:
    """The subscriber: keeps the newest packed value of each video changed in a Pathway commit, and writes them
    in one pipeline when the commit's time ends (on_change / on_time_end of `pw.io.subscribe`)."""

    def __init__(self, writer: Writer, progress: Progress) -> None:
        self.writer = writer
        self.progress = progress
        self.pending: dict[str, bytes] = {}
        self.videos: set[str] = set()

    def on_change(self, key: Any, row: Mapping[str, Any], time: int, is_addition: bool) -> None:
        if is_addition:  # an update is a retraction of the old row and an addition of the new one
            self.pending[row["video"]] = row["folded"].value.packed

    def on_time_end(self, time: int) -> None:
        if not self.pending:
            return
        self.writer.write(self.pending)
        self.videos.update(self.pending)
        self.pending = {}
        self.progress.wrote()
