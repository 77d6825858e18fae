"""`fyp training-set build`: read the engagement history, backfill a training set, write `training.<name>`.

The history is read through pyiceberg (day partitions pruned by the range), backfilled in memory
(fyp.training.backfill) and written over the range's days in one commit (fyp.training.table.write_days), so a
rebuild of the same days replaces them.

What is read: every history row before the range's end plus the label horizon and the allowed lateness (label
events come after a row), and by default every row before the range too. A decayed sum remembers an entity's
whole history since its last idle gap longer than the job's state TTL, and a per-event serving set keeps members
for as long as the user keeps writing to it, so no fixed lookback is exact; `lookback` trades that for less reading
(rows older than it are left out, as if the job had started then).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from featurespec.training import TrainingSet
from fyp.training.backfill import backfill
from fyp.training.history import ALLOWED_LATENESS_MS, history_from_arrow
from fyp.training.table import ensure_table, write_days

__all__ = ["BuildResult", "build", "peak_rss_mb"]

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    """A build's outcome: rows written (and left out because their label horizon is open), per-label positive
    rates, the days replaced, the history rows read, and the backfill's rates."""

    table: str
    training_set: str
    rows: int
    open_rows: int
    days: list[str]
    history_rows: int
    label_rates: dict[str, float]
    seconds: float  # the whole build: read, backfill, write
    backfill_seconds: float
    history_snapshot_id: int | None  # the history snapshot read (also in the written snapshot's summary)
    rows_per_s: float  # rows built per second of backfill
    events_per_s: float  # history rows read per second of backfill
    peak_rss_mb: float
    stages: dict[str, float]


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB (Linux reports ru_maxrss in KB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def build(catalog, training_set: TrainingSet, *, since: date | None = None, until: date | None = None,
          lookback: timedelta | None = None, replace: bool = False, progress: Progress | None = None) -> BuildResult:
    """Backfill `training_set` for the spine rows of days [since, until] (UTC, inclusive; None: unbounded) and
    replace those days of its table.

    lookback: read history rows at most this long before `since` (None: all of them, exact).
    replace: drop a table built from another declaration (else fyp.training.table.DeclarationChanged).
    progress: called with (stage, done, total)."""
    from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThan

    from fyp.lake.history import iso_utc
    from schemas.tables import ENGAGEMENT_HISTORY
    from udfs.envelope import ENGAGEMENT_COLUMNS

    if since and until and until < since:
        raise ValueError(f"--until {until} is before --since {since}")
    started = time.perf_counter()
    history_table = catalog.load_table(ENGAGEMENT_HISTORY)
    since_ms = _ms(since) if since else None
    until_ms = _ms(until + timedelta(days=1)) if until else None
    row_filter = AlwaysTrue()
    newest_ms = None
    if until_ms is not None:
        upper = until_ms + int(training_set.label_horizon.total_seconds() * 1000) + ALLOWED_LATENESS_MS
        row_filter = LessThan("event_time", iso_utc(upper))
        beyond = history_table.scan(row_filter=GreaterThanOrEqual("event_time", iso_utc(upper)),
                                    selected_fields=("event_time",), limit=1).to_arrow()
        if beyond.num_rows:  # rows after what is read: every row of the range has its horizon closed
            newest_ms = upper
    if since_ms is not None and lookback is not None:
        row_filter = And(row_filter, GreaterThanOrEqual("event_time", iso_utc(since_ms - int(
            lookback.total_seconds() * 1000))))
    if progress:
        progress("reading history", 0, 1)
    snapshot = history_table.current_snapshot()
    snapshot_id = snapshot.snapshot_id if snapshot else None
    arrow = history_table.scan(row_filter=row_filter, snapshot_id=snapshot_id,
                               selected_fields=(*ENGAGEMENT_COLUMNS, "kafka_partition", "kafka_offset")).to_arrow()
    history = history_from_arrow(arrow)
    del arrow
    read_s = time.perf_counter() - started
    built = backfill(training_set, history, since_ms=since_ms, until_ms=until_ms, newest_ms=newest_ms,
                     progress=progress)
    backfill_s = built.seconds["total"]
    table = ensure_table(catalog, training_set, replace=replace)
    rows = built.table
    times = rows.column("event_time").cast("int64").to_numpy() // 1000 if rows.num_rows else []
    first = since or (_day(int(times.min())) if len(times) else None)
    last = until or (_day(int(times.max())) if len(times) else None)
    if progress:
        progress("writing", 0, 1)
    if first is not None and last is not None:
        write_days(table, rows, first, last, provenance={"fyp.history_snapshot_id": str(snapshot_id)})
    days = sorted({str(_day(int(t))) for t in {int(t) // 86_400_000 * 86_400_000 for t in times}})
    return BuildResult(
        table=training_set.table, training_set=training_set.qualified_name, rows=rows.num_rows,
        open_rows=built.open_rows, days=days, history_rows=built.history_rows,
        label_rates={k: round(float(v), 6) for k, v in built.label_rates.items()},
        seconds=round(time.perf_counter() - started, 3), backfill_seconds=backfill_s, history_snapshot_id=snapshot_id,
        rows_per_s=round(rows.num_rows / backfill_s, 1) if backfill_s else 0.0,
        events_per_s=round(built.history_rows / backfill_s, 1) if backfill_s else 0.0,
        peak_rss_mb=peak_rss_mb(), stages={"read": round(read_s, 3), **built.seconds})
