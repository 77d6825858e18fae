"""Labels: what followed each training row, within each label's horizon.

A label is true when an event matching its `where`, with the row's values of the label's `keys`, has an event time
in [t, t + within), the row's own event excluded. Label events are the distinct events of the history (the first
copy of each event_id), late or not: lateness is the features job's admission rule, not whether the viewer did it.

Vectorised: label events and rows are coded by their key, and one sorted array of (key code, time) answers every
row with two binary searches.

>>> from datetime import timedelta
>>> from featurespec.reference.sql import engagement_row
>>> from featurespec.training import Label
>>> liked = Label(name="liked", where="event_type = 'like'", within=timedelta(minutes=1))
>>> events = [engagement_row(event_id="l1", event_type="like", event_time=30_000, user_id="u", video_id="v")]
>>> rows = [engagement_row(event_id="i1", event_type="impression", event_time=t, user_id="u", video_id="v")
...         for t in (0, 30_000, 40_000)]
>>> label_values(liked, events, np.array([30_000]), rows, np.array([0, 30_000, 40_000])).tolist()
[True, True, False]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from featurespec.reference.sql import COLUMN_INDEX, Row, compile_predicate
from featurespec.training import Label

__all__ = ["label_values"]

_EVENT_ID = COLUMN_INDEX["event_id"]


def label_values(label: Label, events: Sequence[Row], event_times: np.ndarray, rows: Sequence[Row],
                 times: np.ndarray) -> np.ndarray:
    """`label` for each training row (`rows`, at `times`), from the distinct history events `events` (at
    `event_times`, epoch ms). A row with a NULL or empty key column is False."""
    where = compile_predicate(label.where)
    indexes = [COLUMN_INDEX[k] for k in label.keys]

    def key(row: Row) -> tuple | None:
        parts = tuple(row[i] for i in indexes)
        return parts if all(parts) else None

    codes: dict[tuple, int] = {}
    matching = [i for i, row in enumerate(events) if where(row) and key(row) is not None]
    e_code = np.fromiter((codes.setdefault(key(events[i]), len(codes)) for i in matching), np.int64, len(matching))
    e_time = np.asarray(event_times, dtype=np.int64)[np.asarray(matching, dtype=np.int64)]
    row_keys = [key(row) for row in rows]
    r_code = np.fromiter((codes.get(k, -1) if k is not None else -1 for k in row_keys), np.int64, len(rows))
    out = np.zeros(len(rows), dtype=bool)
    if not len(e_code) or not len(rows):
        return out
    within = int(label.within.total_seconds() * 1000)
    times = np.asarray(times, dtype=np.int64)
    base = min(int(e_time.min()), int(times.min()))
    span = max(int(e_time.max()), int(times.max()) + within) - base + 1
    if (len(codes) + 1) * span >= 2**62:
        raise ValueError(f"label {label.name}: {len(codes)} keys over {span} ms do not fit one int64 sort key")
    combined = np.sort(e_code * span + (e_time - base))
    known = r_code >= 0
    start = r_code[known] * span + (times[known] - base)
    count = np.searchsorted(combined, start + within, "left") - np.searchsorted(combined, start, "left")
    # The row's own event is in its window (same key, time t) when it matches too: it never counts.
    own = np.fromiter((where(rows[i]) for i in np.flatnonzero(known).tolist()), bool, int(known.sum()))
    out[known] = count - own > 0
    return out
