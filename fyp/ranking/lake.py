"""Reading the ranker's training rows from the training table through pyiceberg: only the columns it reads
(event time, video, the labels of its heads, the feature columns), for a range of UTC days."""

from __future__ import annotations

from datetime import date

import numpy as np

from connectors.iceberg_tables import catalog
from fyp.config import Settings
from fyp.ranking.inputs import HEADS
from fyp.training.table import feature_columns
from training import training_set

__all__ = ["TRAINING_SET", "ranker_sets", "read_ranker_rows"]

TRAINING_SET = "watch_outcomes"  # training/watch_outcomes.py: impressions labelled with the five heads' outcomes


def ranker_sets(name: str = TRAINING_SET) -> list[tuple[str, list[str]]]:
    """The feature columns the ranker reads, by feature set: every one the training set declares."""
    return feature_columns(training_set(name))


def read_ranker_rows(settings: Settings, *, since: date | None = None, until: date | None = None,
                     name: str = TRAINING_SET) -> dict[str, np.ndarray]:
    """The ranker's columns of `training.<name>` for the UTC days [since, until] (inclusive; None: unbounded),
    as numpy arrays; `event_time` in epoch ms."""
    import pyarrow.compute as pc
    from pyiceberg.exceptions import NoSuchTableError

    from fyp.training.table import days_filter

    row_filter = days_filter(since, until)
    declared = training_set(name)
    missing_heads = [h for h in HEADS if h not in {label.name for label in declared.labels}]
    if missing_heads:
        raise ValueError(f"training set {name} has no label for the heads {missing_heads}")
    try:
        table = catalog(settings).load_table(declared.table)
    except NoSuchTableError as exc:
        raise ValueError(f"{declared.table} does not exist yet: run `fyp training-set build {name}` first") from exc
    wanted = ["event_time", "video_id", *(f"label_{h}" for h in HEADS),
              *(c for _, columns in ranker_sets(name) for c in columns)]
    rows = table.scan(row_filter=row_filter, selected_fields=tuple(wanted)).to_arrow()
    found = {c: rows.column(c).to_numpy(zero_copy_only=False) for c in wanted if c != "event_time"}
    found["event_time"] = pc.cast(rows.column("event_time"), "int64").to_numpy() // 1000  # us -> ms
    return found
