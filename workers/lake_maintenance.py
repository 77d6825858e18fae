"""Lake-maintenance worker: compaction, snapshot expiry and orphan cleanup of the Iceberg tables, every N minutes.

Wiring only; a pass is `fyp.lake.schedule.maintain_tables`, which `fyp maintain` runs too. The worker runtime's
periodic loop (`workers.runtime.run_periodic`) owns the schedule, SIGTERM/SIGINT and `once`. A failed table is
logged and retried on the next pass; a failed pass (the catalog unreachable) is logged and the next one retries.
Every pass logs one line per table and one summary line.

Run: `fyp worker lake-maintenance [--every 10m] [--older-than 1h] [--table T …] [--once]`; `fyp up` starts it as
the `lake-maintenance` service, and the compose file and Kubernetes manifests run it beside the other workers.
Defaults come from FYP_LAKE_MAINTENANCE_* (`MaintenanceConfig.from_env`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fyp.lake.schedule import MaintenanceConfig, TableOutcome, describe, maintain_tables
from workers.runtime import run_periodic

__all__ = ["MaintenanceFailed", "run"]

log = logging.getLogger("fyp.lake_maintenance")


class MaintenanceFailed(RuntimeError):
    """A one-off pass (`once`) in which some table failed."""


def _log_outcome(outcome: TableOutcome) -> None:
    (log.info if outcome.ok else log.error)("%s", describe(outcome))


def run(config: MaintenanceConfig, *, once: bool = False, stop: threading.Event | None = None,
        on_outcome: Callable[[TableOutcome], object] | None = None) -> int:
    """Maintain the tables every `config.every` until SIGTERM/SIGINT or `stop`, or once; returns the passes run.

    on_outcome: called with each table's outcome (default: one log line each). With `once`, a failed table raises
    `MaintenanceFailed` after the others are done, so a one-off run exits non-zero.
    """
    from connectors.iceberg_tables import catalog
    from fyp.config import load_settings
    from fyp.stack.seaweedfs import s3_client

    settings = load_settings()
    report_to = on_outcome or _log_outcome
    log.info("lake maintenance every %s: tables %s, older than %s, target files %d MiB", config.every,
             ", ".join(config.tables) or "all", config.older_than, config.target_bytes // 2**20)

    def one_pass() -> None:
        started = time.monotonic()
        # A catalog and an S3 client per pass: a pass must not depend on connections from before a restart.
        outcomes = maintain_tables(catalog(settings), s3_client(settings), config, on_outcome=report_to)
        failed = [o.table for o in outcomes if not o.ok]
        log.info("lake maintenance pass: %d table%s, %d failed%s, %.1f s", len(outcomes),
                 "" if len(outcomes) == 1 else "s", len(failed), f" ({', '.join(failed)})" if failed else "",
                 time.monotonic() - started)
        if once and failed:
            raise MaintenanceFailed(f"maintenance failed for {', '.join(failed)}")

    return run_periodic(one_pass, every_s=config.every.total_seconds(), once=once, stop=stop)

