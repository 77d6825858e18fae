"""Candidate-sets worker: co-watch from the Iceberg history into Redis, every N seconds (follows: jobs/follow_graph.py).

Wiring only; the work lives in `fyp.candidates.history_sets.refresh` (one scan of the history, the sets written
with a TTL). The worker runtime's periodic loop (`workers.runtime.run_periodic`) owns the schedule, SIGTERM/SIGINT
and `once`: a failed refresh (the catalog or Redis restarting) is logged and the next one retries.

Run: `fyp worker candidate-sets [--every 300] [--once] [--json]`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from fyp.candidates.history_sets import HistorySetsConfig, RefreshReport, refresh
from workers.runtime import run_periodic

__all__ = ["describe", "run"]

log = logging.getLogger("fyp.candidate_sets")


def describe(report: RefreshReport) -> str:
    """One line for a person.

    >>> describe(RefreshReport(events=1200, cowatch_videos=3, cowatch_pairs=6, query_s=0.41, write_s=0.05))
    '1,200 events -> co-watch for 3 videos (6 pairs); query 0.4 s, write 0.1 s'
    """
    return (f"{report.events:,} events -> co-watch for {report.cowatch_videos:,} videos "
            f"({report.cowatch_pairs:,} pairs); "
            f"query {report.query_s:.1f} s, write {report.write_s:.1f} s")


def run(config: HistorySetsConfig = HistorySetsConfig(), *, every: timedelta = timedelta(minutes=5),
        once: bool = False, on_report: Callable[[RefreshReport], object] | None = None,
        stop: threading.Event | None = None) -> int:  # pragma: no cover - needs Iceberg and Redis
    """Refresh every `every` (default 5 min) until SIGTERM/SIGINT or `stop`, or once; returns the passes run.

    on_report: called with each refresh's report (default: logged with `describe`).
    """
    from fyp.config import load_settings

    settings = load_settings()
    client = settings.redis_client()
    report_to = on_report or (lambda report: log.info("%s", describe(report)))
    return run_periodic(lambda: report_to(refresh(settings, client, config)), every_s=every.total_seconds(),
                        once=once, stop=stop)
