"""What one peer run reports."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PeerRun"]


@dataclass(frozen=True, kw_only=True)
class PeerRun:
    """What a peer did.

    events: records consumed and processed, bad ones included; good_events: those folded into features.
    seconds: from the first record consumed to the end of the last Redis write.
    cpu_seconds: CPU time of the whole process (all its threads) over the same span; on a shared machine,
        events / cpu_seconds is the steadier figure.
    redis_writes: keys written (writes skipped because Redis held a newer event time not counted).
    entities: distinct entities (videos) seen.
    last_write_at: wall-clock time (time.time()) at the end of the last Redis write, for the span from the
        peer's start (`runner.run_peer` being called: imports, consumer group join) to it; None where a peer
        does not report it.
    """

    events: int
    good_events: int
    seconds: float
    cpu_seconds: float
    redis_writes: int
    entities: int
    last_write_at: float | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")
