"""Reading the training rows from the Iceberg history (history.engagement_events) through pyiceberg."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.iceberg_tables import catalog
from fyp.config import Settings
from fyp.embeddings.data import HISTORY_COLUMNS
from schemas.tables import ENGAGEMENT_HISTORY

__all__ = ["read_history"]


def read_history(settings: Settings, *, since: datetime | None = None) -> Any:
    """The columns the two towers need, as a pyarrow Table (event_time >= `since` when given)."""
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.expressions import AlwaysTrue, GreaterThanOrEqual

    try:
        table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
    except NoSuchTableError as exc:
        raise ValueError(f"{ENGAGEMENT_HISTORY} does not exist yet: submit engagement_history and produce "
                         "traffic first") from exc
    row_filter = GreaterThanOrEqual("event_time", since.isoformat()) if since else AlwaysTrue()
    return table.scan(row_filter=row_filter, selected_fields=HISTORY_COLUMNS).to_arrow()
