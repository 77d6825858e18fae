"""Read what an experiment report needs from the Iceberg engagement history, in bounded memory: two streaming
scans of the window (fyp/experiments/fold.py says why two), each projected to its pass's columns and filtered in
the scan on event_time (the table's day partition, so whole days outside the window are skipped); the exposure
pass also on event_type = 'impression' (the table's other partition column, so only impression files are read).

The arm filter cannot go into the scan: `arms` is a list column, and Iceberg expressions (and Parquet statistics)
have no "list contains" predicate, so pass 1 keeps the experiment's arm ids per batch in Arrow.

Why not `DataScan.to_arrow_batch_reader()` as is: pyiceberg 0.12 reads the scan's files through
`ThreadPoolExecutor.map`, which submits every file at once and holds each file's batches until they are consumed,
so a consumer slower than the readers (the fold) lets the whole scan pile up in memory. `_batches` hands pyiceberg's
own reader (`ArrowScan.to_record_batches`, what to_arrow_batch_reader wraps) a few files at a time instead, so at
most FILES_IN_FLIGHT files' projected columns are in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from fyp.experiments.fold import EVENT_COLUMNS, EXPOSURE_COLUMNS, Exposures, fold_exposures, fold_user_sums
from fyp.experiments.report import COLUMNS

__all__ = ["FILES_IN_FLIGHT", "fold_window"]

FILES_IN_FLIGHT = 2  # files read in parallel per step: the machine's cores; memory grows with it
# progress(pass name, rows planned in that pass's files): returns the callback that gets each batch's rows
Progress = Callable[[str, int], Callable[[int], None]]


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _window(since_ms: int | None, until_ms: int | None) -> Any:
    from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThan

    row_filter = AlwaysTrue()
    if since_ms is not None:
        row_filter = And(row_filter, GreaterThanOrEqual("event_time", _iso(since_ms)))
    if until_ms is not None:
        row_filter = And(row_filter, LessThan("event_time", _iso(until_ms)))
    return row_filter


def _batches(scan: Any, name: str, progress: Progress | None) -> Iterator[Any]:
    """The scan's record batches, FILES_IN_FLIGHT files at a time (module docstring)."""
    from pyiceberg.io.pyarrow import ArrowScan

    tasks = list(scan.plan_files())
    advance = progress(name, sum(t.file.record_count for t in tasks)) if progress else None
    reader = ArrowScan(scan.table_metadata, scan.io, scan.projection(), scan.row_filter, scan.case_sensitive)
    for start in range(0, len(tasks), FILES_IN_FLIGHT):
        group = tasks[start:start + FILES_IN_FLIGHT]
        yield from reader.to_record_batches(group)
        if advance:  # planned rows (before the row filter), so the bar ends full
            advance(sum(t.file.record_count for t in group))


def fold_window(table: Any, experiment: str, *, since_ms: int | None = None, until_ms: int | None = None,
                progress: Progress | None = None) -> tuple[Exposures, pd.DataFrame]:
    """Both passes over the history rows with since_ms <= event_time < until_ms (either bound optional): the
    experiment's exposures and the per-user sums for `report.build_report`. Without exposures the second pass is
    not run (the report is an error then).

    `table`: the pyiceberg Table of the engagement history (connectors.iceberg_tables ENGAGEMENT_HISTORY).
    """
    from pyiceberg.expressions import And, EqualTo

    names = {f.name for f in table.schema().fields}
    if missing := [c for c in COLUMNS if c not in names]:
        raise ValueError(f"the history table lacks columns {missing}: run `fyp up` (it adds the columns an "
                         "upgraded stack lacks, docs/ANALYSTS.md \"Schema evolution\")")
    window = _window(since_ms, until_ms)
    impressions = table.scan(row_filter=And(window, EqualTo("event_type", "impression")),
                             selected_fields=EXPOSURE_COLUMNS)
    exposures = fold_exposures(_batches(impressions, "exposures", progress), experiment)
    if exposures.first.empty:
        return exposures, fold_user_sums([], exposures.first)
    events = table.scan(row_filter=window, selected_fields=EVENT_COLUMNS)
    return exposures, fold_user_sums(_batches(events, "events", progress), exposures.first)
