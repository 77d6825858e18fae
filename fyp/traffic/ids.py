"""Identifiers of one generator run: event, session and comment ids that never repeat across runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

__all__ = ["RunIds"]


@dataclass(frozen=True, kw_only=True)
class RunIds:
    """Ids derived from a per-run UUID and a counter.

    An event id keeps the run UUID's first 24 characters and puts the event's number in the last 12
    hex digits: still a well-formed UUID, unique within the run by construction and across runs by the
    run UUID's random bits, and far cheaper than `uuid4()` per event. A seeded run is reproducible
    except for these ids unless `run_id` is fixed too.

    >>> ids = RunIds(run_id="12345678-1234-4abc-8def-000000000000")
    >>> ids.event_id(255), ids.session_id(10), ids.comment_id(7)
    ('12345678-1234-4abc-8def-0000000000ff', '12345678-a', '12345678-c7')
    """

    run_id: str

    def __post_init__(self) -> None:
        try:
            canonical = str(uuid.UUID(self.run_id))
        except ValueError as exc:
            raise ValueError(f"run_id must be a UUID, got {self.run_id!r}") from exc
        if canonical != self.run_id:
            raise ValueError(f"run_id must be a lower-case hyphenated UUID, got {self.run_id!r}")

    @classmethod
    def random(cls) -> RunIds:
        return cls(run_id=str(uuid.uuid4()))

    @property
    def event_prefix(self) -> str:
        return self.run_id[:24]

    @property
    def tag(self) -> str:
        return self.run_id[:8]

    def event_id(self, n: int) -> str:
        return f"{self.event_prefix}{n:012x}"

    def session_id(self, n: int) -> str:
        return f"{self.tag}-{n:x}"

    def comment_id(self, n: int) -> str:
        return f"{self.tag}-c{n:x}"
