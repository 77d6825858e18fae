"""`fyp bench training-set`: the point-in-time backfill's rate and memory on generated history, no stack needed.

N engagement events come from the traffic model (fyp.traffic, seeded), spread over `days` of event time and laid
out on Kafka partitions by key as the producer would, decoded by the reference decoder (udfs/envelope.py), then
`fyp.training.backfill` builds the training set from them in this process. Generation is timed apart.

There are no batches to give latency percentiles for: the backfill is one sort-merge pass per feature set, so the
report gives each stage's seconds instead. Memory is the input (the rows) plus one set's sort keys at a time:
`input_bytes_per_event` (the resident growth while holding the rows) and the peak say what N needs.
"""

from __future__ import annotations

import gc
import resource
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.training.backfill import backfill
from fyp.training.history import History
from udfs.envelope import ENGAGEMENT_ROW_FIELDS, to_engagement_row

__all__ = ["TrainingBenchResult", "generated_history", "run_training_bench"]

_SHARED = tuple(i for i, (name, kind) in enumerate(ENGAGEMENT_ROW_FIELDS)
                if kind == "STRING" and name not in ("event_id", "comment_text"))
_HASHTAGS = next(i for i, (name, _) in enumerate(ENGAGEMENT_ROW_FIELDS) if name == "hashtags")
_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a fixed origin, so a seed gives the same history


@dataclass(frozen=True, kw_only=True)
class TrainingBenchResult:
    events: int
    spine_rows: int  # rows built (horizon closed)
    open_rows: int
    days: float
    generate_s: float
    backfill_s: float
    rows_per_s: float
    events_per_s: float
    rss_before_mb: float  # resident memory before generating
    rss_input_mb: float  # resident memory holding the history
    peak_rss_mb: float
    input_bytes_per_event: float
    label_rates: dict[str, float]
    stages: dict[str, float] = field(default_factory=dict)


def _rss_mb() -> float:
    """Current resident memory, MB (Linux /proc; the peak from getrusage elsewhere)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def generated_history(events: int, *, users: int, videos: int, days: float, partitions: int = 6, seed: int = 11,
                      late_fraction: float = 0.01, progress: Callable[[int], None] | None = None) -> History:
    """`events` generated engagement events over `days` of event time, with Kafka partitions by user key and
    offsets in generation order. Repeated strings (ids, types) are shared, as a column read shares them."""
    config = TrafficConfig(users=users, videos=videos, late_fraction=late_fraction, late_by=timedelta(minutes=10))
    views = 200
    blocks = max(1, round(events / 2.3 / views))
    step_ms = days * 86_400_000 / blocks
    block = [0]

    def clock() -> int:
        block[0] += 1
        return _START_MS + int(block[0] * step_ms)

    generator = TrafficGenerator(config, seed, run_id="00000000-0000-4000-8000-000000000000", clock=clock)
    shared: dict[str, str] = {}
    rows: list[tuple] = []
    keys: list[int] = []
    while len(rows) < events:
        for key, value in generator.next_batch(views).pairs:
            row = to_engagement_row(value, now_ms=_START_MS + 400 * 86_400_000)
            if row[-1] is not None:
                continue
            values = list(row)
            for i in _SHARED:
                if values[i] is not None:
                    values[i] = shared.setdefault(values[i], values[i])
            if values[_HASHTAGS] is not None:
                values[_HASHTAGS] = tuple(shared.setdefault(t, t) for t in values[_HASHTAGS])
            rows.append(tuple(values))
            keys.append(zlib.crc32(key) % partitions)
            if len(rows) == events:
                break
        if progress:
            progress(len(rows))
    partition = np.asarray(keys, dtype=np.int64)
    offsets = np.zeros(len(rows), dtype=np.int64)
    for p in range(partitions):
        mine = partition == p
        offsets[mine] = np.arange(int(mine.sum()))
    return History(rows=rows, partitions=partition, offsets=offsets)


def run_training_bench(events: int, *, users: int, videos: int, days: float = 1.0, seed: int = 11,
                       progress: Callable[[str, int, int], None] | None = None) -> TrainingBenchResult:
    """Generate `events` history events and backfill `watch_outcomes` from them; rates and memory."""
    from training import training_set

    gc.collect()
    before = _rss_mb()
    started = time.perf_counter()
    history = generated_history(events, users=users, videos=videos, days=days, seed=seed,
                                progress=(lambda n: progress("generating", n, events)) if progress else None)
    generate_s = time.perf_counter() - started
    gc.collect()
    holding = _rss_mb()
    built = backfill(training_set("watch_outcomes"), history, progress=progress)
    seconds = built.seconds["total"]
    return TrainingBenchResult(
        events=events, spine_rows=built.table.num_rows, open_rows=built.open_rows, days=days,
        generate_s=round(generate_s, 2), backfill_s=round(seconds, 2),
        rows_per_s=round(built.table.num_rows / seconds, 1), events_per_s=round(events / seconds, 1),
        rss_before_mb=round(before, 1), rss_input_mb=round(holding, 1),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        input_bytes_per_event=round((holding - before) * 2**20 / events, 1),
        label_rates={k: round(float(v), 4) for k, v in built.label_rates.items()},
        stages={k: round(v, 2) for k, v in built.seconds.items()})

