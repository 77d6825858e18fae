"""Read what an experiment report needs from the Iceberg engagement history: the report's columns of the rows in
a time window, with event_time as epoch ms. One pyiceberg scan, filtered on event_time (the table's partition
column, so whole days outside the window are skipped) and projected to `report.COLUMNS`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fyp.experiments.report import COLUMNS

__all__ = ["read_window"]


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def read_window(table: Any, *, since_ms: int | None = None, until_ms: int | None = None) -> pd.DataFrame:
    """The history rows with since_ms <= event_time < until_ms (either bound optional), COLUMNS only.

    `table`: the pyiceberg Table of the engagement history (connectors.iceberg_tables ENGAGEMENT_HISTORY). Rows
    written before the table had `arms` read it as null; they become [] here, as the decoder writes it.
    """
    import pyarrow as pa
    from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThan

    row_filter = AlwaysTrue()
    if since_ms is not None:
        row_filter = And(row_filter, GreaterThanOrEqual("event_time", _iso(since_ms)))
    if until_ms is not None:
        row_filter = And(row_filter, LessThan("event_time", _iso(until_ms)))
    names = {f.name for f in table.schema().fields}
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ValueError(f"the history table lacks columns {missing}: run `fyp up` (it adds the columns an "
                         "upgraded stack lacks, docs/ANALYSTS.md \"Schema evolution\")")
    arrow = table.scan(row_filter=row_filter, selected_fields=COLUMNS).to_arrow()
    micros = arrow.column("event_time").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    frame = arrow.drop(["event_time"]).to_pandas()
    frame["event_time"] = micros.to_numpy() // 1000
    frame["arms"] = [list(a) if a is not None else [] for a in frame["arms"]]
    return frame[list(COLUMNS)]
