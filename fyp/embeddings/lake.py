"""Reading the two towers' training rows from the training table (`training.watch_outcomes`) through pyiceberg.

The table is built by `fyp training-set build watch_outcomes` (fyp.training), partitioned by day(event_time):
a day range prunes whole partitions. Only the columns the towers read are scanned (`data.table_columns`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from connectors.iceberg_tables import catalog
from fyp.config import Settings
from fyp.embeddings.data import table_columns
from training import training_set

__all__ = ["TRAINING_SET", "read_training_rows"]

TRAINING_SET = "watch_outcomes"  # training/watch_outcomes.py: impressions, labels, user features, recent positives


def read_training_rows(settings: Settings, *, since: date | None = None, until: date | None = None,
                       name: str = TRAINING_SET) -> Any:
    """The towers' columns of `training.<name>` for the UTC days [since, until] (inclusive; None: unbounded),
    as a pyarrow Table."""
    from pyiceberg.exceptions import NoSuchTableError

    from fyp.training.table import days_filter

    row_filter = days_filter(since, until)
    declared = training_set(name)
    try:
        table = catalog(settings).load_table(declared.table)
    except NoSuchTableError as exc:
        raise ValueError(f"{declared.table} does not exist yet: run `fyp training-set build {name}` first") from exc
    present = {field.name for field in table.schema().fields}
    columns = [c for c in table_columns() if c in present]
    return table.scan(row_filter=row_filter, selected_fields=tuple(columns)).to_arrow()
