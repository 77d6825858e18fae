"""Plain engagement histories for the training tests, and the brute-force point-in-time value they are checked by.

`reference_value` reads one entity as of t the slow, obvious way, from the rules alone: the rows `fyp verify`
would keep (fyp.lake.history.late_flags, then the first copy of each event_id in Kafka order), those of the
entity with event_time < t, after the last idle gap longer than the job's state TTL, folded by the reference
evaluator, packed, null if the key expired in Redis, then serving's `decode_row` at t.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from features import ALLOWED_LATENESS
from featurespec import FeatureSet
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import COLUMN_INDEX, engagement_row
from featurespec.sql import default_state_ttl
from fyp.lake.history import late_flags
from fyp.serving.layout import ReadPlan, decode_row
from fyp.training.history import History

T0 = 1_800_000_000_000
MINUTE = 60_000
HOUR = 60 * MINUTE
LATENESS_MS = int(ALLOWED_LATENESS.total_seconds() * 1000)

_DETAIL = {
    "impression": {},
    "watch": {"watch_ms": 9_600, "video_duration_ms": 10_000},
    "half_watch": {"watch_ms": 4_000, "video_duration_ms": 10_000},
    "skip": {"dwell_ms": 500, "video_duration_ms": 10_000},
    "like": {"action": "LIKE"},
    "share": {"action": "copy_link"},
    "follow": {"action": "FOLLOW"},
}


def event(kind: str, t: int, *, user: str = "u1", video: str = "v1", author: str = "a1", sound: str | None = "s1",
          hashtags=("cats",), event_id: str | None = None, n: list[int] = [0]) -> tuple:  # noqa: B006 (a counter)
    """One engagement row; `kind` is an event type, or half_watch (a play that does not complete)."""
    n[0] += 1
    event_type = "watch" if kind == "half_watch" else kind
    return engagement_row(event_type=event_type, event_id=event_id or f"e{n[0]}", event_time=t, user_id=user,
                          video_id=video, author_id=author, sound_id=sound, region="US", language="en",
                          hashtags=list(hashtags), **_DETAIL[kind])


def history(rows, partitions=None, offsets=None) -> History:
    """Rows in Kafka order on partition 0 unless given (offsets: arrival order within each partition)."""
    partitions = np.zeros(len(rows), np.int64) if partitions is None else np.asarray(partitions, np.int64)
    if offsets is None:
        offsets = np.zeros(len(rows), np.int64)
        for p in set(partitions.tolist()):
            mine = partitions == p
            offsets[mine] = np.arange(mine.sum())
    return History(rows=list(rows), partitions=partitions, offsets=np.asarray(offsets, np.int64))


def kept_rows(hist: History) -> list[tuple]:
    """The rows the job folds, in Kafka order, by fyp verify's rules."""
    by_partition = defaultdict(lambda: ([], []))
    for p, o, row in zip(hist.partitions.tolist(), hist.offsets.tolist(), hist.rows, strict=True):
        by_partition[p][0].append(o)
        by_partition[p][1].append(row[COLUMN_INDEX["event_time"]])
    stream = {p: (np.array(o), np.array(t)) for p, (o, t) in by_partition.items()}
    coordinates = list(zip(hist.partitions.tolist(), hist.offsets.tolist(), strict=True))
    flags = late_flags(stream, [(p, o, r[COLUMN_INDEX["event_time"]]) for (p, o), r in zip(coordinates, hist.rows,
                                                                                           strict=True)], LATENESS_MS)
    ordered = sorted(zip(coordinates, hist.rows, flags, strict=True), key=lambda x: x[0])
    seen, kept = set(), []
    for _, row, late in ordered:
        if late or row[COLUMN_INDEX["event_id"]] in seen:
            continue
        seen.add(row[COLUMN_INDEX["event_id"]])
        kept.append(row)
    return kept


def reference_value(feature_set: FeatureSet, kept: list[tuple], key: str, t: int) -> dict[str, float] | None:
    evaluator = FeatureEvaluator.of(feature_set)
    mine = [r for r in kept if r[COLUMN_INDEX["event_time"]] < t and key in evaluator.keys(r)]
    if not mine:
        return None
    times = sorted(r[COLUMN_INDEX["event_time"]] for r in mine)
    gap = default_state_ttl(feature_set).total_seconds() * 1000
    restart = max((b for a, b in itertools.pairwise(times) if b - a > gap), default=None)
    if restart is not None:
        mine = [r for r in mine if r[COLUMN_INDEX["event_time"]] >= restart]
    state = evaluator.new_state()
    for row in mine:
        for row_key in evaluator.keys(row):
            if row_key == key:
                evaluator.update(state, row)
    if t - evaluator.event_time(state) >= feature_set.ttl.total_seconds() * 1000:
        return None
    return decode_row(ReadPlan.of(feature_set), evaluator.pack(state), t)[0]
