"""Append takedown audit rows (`udfs.takedown_audit`) to the Iceberg table `moderation.takedowns`.

Takedowns are rare (a few a day), so each call is one small append and commit: simple, and the row is durable
before the API answers. pyiceberg retries a commit that lost a race with another writer.
"""

from __future__ import annotations

from typing import Any

from fyp.config import Settings
from schemas.tables import TAKEDOWNS
from udfs.takedown_audit import TakedownAudit, audit_row

__all__ = ["IcebergTakedownAudit"]


class IcebergTakedownAudit:
    """`audit(TakedownAudit)`: append one row to `moderation.takedowns` (created by `ensure_tables` if missing)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._table: Any = None

    def __call__(self, audit: TakedownAudit) -> None:
        import pyarrow as pa

        table = self._load()
        table.append(pa.Table.from_pylist([audit_row(audit)], schema=table.schema().as_arrow()))

    def _load(self) -> Any:
        from connectors.iceberg_tables import catalog, ensure_tables

        if self._table is None:
            cat = catalog(self._settings)
            if not cat.table_exists(TAKEDOWNS):
                ensure_tables(self._settings)
            self._table = cat.load_table(TAKEDOWNS)
        else:
            self._table.refresh()  # another replica may have committed since
        return self._table
