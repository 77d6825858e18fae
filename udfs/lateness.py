"""The features job's lateness rule, shared by the job's decoder and `fyp verify features`.

An event is late when its event time is more than the allowed lateness behind the newest event time seen
before it in its own Kafka partition. Per partition, because a partition is read in order: lateness within
it is the producer's (a client that buffered events, a clock behind). Across partitions, the distance is the
consumer's own doing: after a restart or under backlog, one partition of a subtask is read minutes ahead of
another, and a subtask-wide newest time would drop on-time events of the slower partition.

The newest time never runs ahead of the wall clock: an event from a client whose clock is ahead (accepted, if
within the tolerated skew) advances its partition's newest time only up to `now_ms`. Otherwise one client four
minutes ahead would make every other client's on-time events on that partition late for minutes. Replays are
unaffected: there the wall clock is past every event time.

>>> gate = LatenessGate(allowed_lateness_ms=120_000)
>>> [gate.admit(0, t) for t in (600_000, 300_000, 590_000)], gate.admit(1, 300_000)
([True, False, True], True)
>>> gate.admit(2, 240_000, now_ms=0), gate.admit(2, -1_000, now_ms=0)  # a client 4 minutes ahead
(True, True)
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["LatenessGate"]


class LatenessGate:
    """Per partition, the newest event time admitted so far; `admit` says whether an event is on time."""

    def __init__(self, allowed_lateness_ms: int) -> None:
        if allowed_lateness_ms < 0:
            raise ValueError(f"allowed_lateness_ms must be >= 0, got {allowed_lateness_ms}")
        self.allowed_lateness_ms = allowed_lateness_ms
        self.newest: dict[Hashable, int] = {}

    def admit(self, partition: Hashable, event_ms: int, now_ms: int | None = None) -> bool:
        """True for an on-time event (and it may advance its partition's newest time); False for a late one.

        now_ms: the wall clock, epoch ms; the newest time advances at most to it (None: no cap, as when
        replaying history whose processing times are unknown).
        """
        newest = self.newest.get(partition)
        if newest is not None and event_ms < newest - self.allowed_lateness_ms:
            return False
        advanced = event_ms if now_ms is None else min(event_ms, now_ms)
        if newest is None or advanced > newest:
            self.newest[partition] = advanced
        return True
