"""The lake-maintenance worker as a service of the local stack: `fyp up` starts it after SeaweedFS, `fyp down`
stops it, `fyp status` shows its last pass. It listens on no port; its settings are FYP_LAKE_MAINTENANCE_*
(`fyp.lake.schedule.MaintenanceConfig.from_env`), inherited from the environment `fyp up` runs in."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from fyp.config import REPO_ROOT
from fyp.stack.service import ProcessService

__all__ = ["LakeMaintenanceService"]

PASS_MARK = "lake maintenance pass:"  # the summary line workers/lake_maintenance.py logs after each pass
TAIL_BYTES = 64 * 1024


class LakeMaintenanceService(ProcessService):
    name = "lake-maintenance"
    start_timeout_s = 30.0

    def address(self) -> str:
        return f"iceberg {self.settings.iceberg_rest_uri}"

    def ports(self) -> Sequence[int]:
        return []

    def command(self) -> Sequence[str]:
        # The interpreter `fyp up` runs under: the tools environment, which has pyiceberg.
        return [sys.executable, "-m", "fyp.cli", "worker", "lake-maintenance"]

    def environment(self) -> Mapping[str, str]:
        # It runs in its own home directory: the repository must be importable from there.
        return {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}

    def check(self) -> str:
        """Healthy while running (a failed table is retried on the next pass, not a reason to restart); the
        detail is the last pass's summary line."""
        return self.last_pass() or "first pass running"

    def last_pass(self) -> str | None:
        """The last pass's time and summary from the log (None before the first pass ends)."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - TAIL_BYTES))
                tail = log.read().decode("utf-8", "replace")
        except OSError:
            return None
        lines = [line for line in tail.splitlines() if PASS_MARK in line]
        if not lines:
            return None
        logged, summary = lines[-1].split(PASS_MARK, 1)
        return f"last pass {logged[:19]}:{summary[:180]}"  # logged: "2026-12-06 18:22:18,617 INFO fyp.…"
