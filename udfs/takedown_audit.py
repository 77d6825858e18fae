"""The takedown audit record: one row of `moderation.takedowns` per filed takedown or restore.

The columns are declared here, without pyiceberg, so the service and its tests need no catalog;
`connectors.iceberg_tables.takedowns_schema` makes the Iceberg schema from them and
`connectors.iceberg_takedown_sink` appends the rows.

>>> row = TakedownAudit(event_id="e1", action="takedown", video_id="v1", notice_id="N-1", claimant="Label",
...                     reason="copyright", filed_by="api", filed_at_ms=1_000, objects_moved=("videos/v1/a",))
>>> audit_row(row)["objects_count"]
1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["TAKEDOWN_AUDIT_FIELDS", "Audit", "TakedownAction", "TakedownAudit", "audit_row"]

TakedownAction = Literal["takedown", "restore"]

# (column, type) in table order; the types are the names connectors.iceberg_tables maps to Iceberg types.
TAKEDOWN_AUDIT_FIELDS: tuple[tuple[str, str], ...] = (
    ("event_id", "STRING"),  # the Takedown event's id: a retried request has the same one
    ("action", "STRING"),  # takedown | restore
    ("video_id", "STRING"),
    ("notice_id", "STRING"),
    ("claimant", "STRING"),  # who filed the notice (rights holder or agent), as given
    ("reason", "STRING"),
    ("filed_by", "STRING"),  # which door it came through: "api:<client host>" or "cli:<OS user>"
    ("filed_at", "TIMESTAMPTZ"),
    ("objects_count", "INT"),  # objects this call moved; 0 on a retry that found them already moved
    ("objects", "ARRAY<STRING>"),  # their published keys, in the order moved
)


@dataclass(frozen=True, kw_only=True)
class TakedownAudit:
    """What one takedown or restore call did. filed_at_ms: epoch milliseconds (UTC)."""

    event_id: str
    action: TakedownAction
    video_id: str
    notice_id: str
    claimant: str | None
    reason: str
    filed_by: str
    filed_at_ms: int
    objects_moved: tuple[str, ...]


Audit = Callable[[TakedownAudit], None]


def audit_row(audit: TakedownAudit) -> dict[str, Any]:
    """The row of `TAKEDOWN_AUDIT_FIELDS` for `audit` (filed_at as an aware UTC datetime)."""
    return {
        "event_id": audit.event_id, "action": audit.action, "video_id": audit.video_id,
        "notice_id": audit.notice_id, "claimant": audit.claimant, "reason": audit.reason,
        "filed_by": audit.filed_by, "filed_at": datetime.fromtimestamp(audit.filed_at_ms / 1000, UTC),
        "objects_count": len(audit.objects_moved), "objects": list(audit.objects_moved),
    }
