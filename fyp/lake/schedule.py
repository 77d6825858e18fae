"""Scheduled upkeep of the lake: which tables, how often, how old, and one pass that never stops at a failed table.

`fyp maintain` (once, or `--every`) and the lake-maintenance worker (`workers/lake_maintenance.py`, which `fyp up`,
docker-compose and the Kubernetes manifests start) run the same `maintain_tables`, with a `MaintenanceConfig` read
from the environment (`MaintenanceConfig.from_env`) and overridden by the command's flags.

A table whose maintenance fails (a commit lost to a Flink writer three times over, S3 or the catalog restarting)
is recorded as failed and the pass goes on to the next table; the next pass tries it again. Nothing is lost by a
failure: compaction and expiry are single atomic Iceberg commits, and orphan cleanup only deletes what no snapshot
refers to (docs/OPERATIONS.md, "Lake maintenance").
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fyp.lake.maintenance import MaintenanceReport, maintain_table, parse_duration

__all__ = [
    "MIN_SAFE_ORPHAN_AGE",
    "MaintenanceConfig",
    "TableOutcome",
    "describe",
    "maintain_tables",
]

log = logging.getLogger("fyp.lake_maintenance")

# Files a Flink writer wrote but commits only on its next checkpoint look like orphans until then: a shorter age
# could delete them. Checkpoints here are seconds to minutes apart (flink-conf/config.yaml).
MIN_SAFE_ORPHAN_AGE = timedelta(minutes=10)
MIN_PERIOD = timedelta(seconds=1)
MAX_PERIOD = timedelta(days=7)
MAX_AGE = timedelta(days=365)
MAX_TABLES = 256
MAX_ERROR_CHARS = 500
MIN_TARGET_BYTES, MAX_TARGET_BYTES = 2**20, 4 * 2**30
_TABLE_NAME = re.compile(r"[A-Za-z0-9_]{1,128}(\.[A-Za-z0-9_]{1,128}){1,3}")


@dataclass(frozen=True, kw_only=True)
class MaintenanceConfig:
    """What one pass does, and how often the worker runs one.

    every: time between the starts of two passes (default 10 min; 1 s to 7 days).
    older_than: snapshots and orphan files younger than this stay (default 1 h; at least `MIN_SAFE_ORPHAN_AGE`,
    10 min, unless `allow_recent`, which is only safe when no writer runs).
    target_bytes: compacted file size on disk (default 128 MiB; 1 MiB to 4 GiB).
    tables: `namespace.table` names (default: every table in the catalog, listed again on each pass).

    >>> MaintenanceConfig().every, MaintenanceConfig().older_than
    (datetime.timedelta(seconds=600), datetime.timedelta(seconds=3600))
    >>> MaintenanceConfig(older_than=timedelta(minutes=1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: older-than 0:01:00 could delete files a running writer has not committed yet ...
    """

    every: timedelta = timedelta(minutes=10)
    older_than: timedelta = timedelta(hours=1)
    target_bytes: int = 128 * 2**20
    tables: tuple[str, ...] = ()
    allow_recent: bool = False

    def __post_init__(self) -> None:
        if not MIN_PERIOD <= self.every <= MAX_PERIOD:
            raise ValueError(f"every {self.every} is not between {MIN_PERIOD} and {MAX_PERIOD}")
        if not timedelta(0) <= self.older_than <= MAX_AGE:
            raise ValueError(f"older-than {self.older_than} is not between 0 and {MAX_AGE.days} days")
        if self.older_than < MIN_SAFE_ORPHAN_AGE and not self.allow_recent:
            raise ValueError(f"older-than {self.older_than} could delete files a running writer has not committed "
                             "yet (Flink commits on checkpoints); use 10m or more, or --allow-recent "
                             "(FYP_LAKE_MAINTENANCE_ALLOW_RECENT=1) only when no writer runs")
        if not MIN_TARGET_BYTES <= self.target_bytes <= MAX_TARGET_BYTES:
            raise ValueError(f"target file size {self.target_bytes} bytes is not between 1 MiB and 4 GiB")
        if len(self.tables) > MAX_TABLES:
            raise ValueError(f"{len(self.tables)} tables named; at most {MAX_TABLES}")
        bad = [name for name in self.tables if not _TABLE_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"{bad[0][:200]!r} is not a table name like namespace.table (letters, digits, _)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> MaintenanceConfig:
        """The defaults, overridden by the environment, then by `overrides` (a command's flags; None is ignored).

        FYP_LAKE_MAINTENANCE_EVERY and FYP_LAKE_MAINTENANCE_OLDER_THAN (durations: 10m, 1h, 1h30m),
        FYP_LAKE_MAINTENANCE_TARGET_FILE_MB (MiB), FYP_LAKE_MAINTENANCE_TABLES (comma-separated),
        FYP_LAKE_MAINTENANCE_ALLOW_RECENT (1 or 0).

        >>> MaintenanceConfig.from_env({"FYP_LAKE_MAINTENANCE_EVERY": "2m",
        ...                             "FYP_LAKE_MAINTENANCE_TABLES": "history.videos, training.x"}).tables
        ('history.videos', 'training.x')
        """
        values: dict[str, Any] = {}
        for key, variable, parse in (
            ("every", "FYP_LAKE_MAINTENANCE_EVERY", parse_duration),
            ("older_than", "FYP_LAKE_MAINTENANCE_OLDER_THAN", parse_duration),
            ("target_bytes", "FYP_LAKE_MAINTENANCE_TARGET_FILE_MB", _mebibytes),
            ("tables", "FYP_LAKE_MAINTENANCE_TABLES", _names),
            ("allow_recent", "FYP_LAKE_MAINTENANCE_ALLOW_RECENT", _flag),
        ):
            raw = environ.get(variable, "").strip()
            if raw:
                if len(raw) > 64 * 1024:
                    raise ValueError(f"{variable} is longer than 64 KiB")
                try:
                    values[key] = parse(raw)
                except ValueError as exc:
                    raise ValueError(f"{variable}={raw[:200]!r}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _mebibytes(raw: str) -> int:
    if not raw.isdigit():
        raise ValueError("not a whole number of MiB")
    return int(raw) * 2**20


def _names(raw: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _flag(raw: str) -> bool:
    if raw not in ("0", "1"):
        raise ValueError("not 0 or 1")
    return raw == "1"


@dataclass(frozen=True, kw_only=True)
class TableOutcome:
    """One table's part of a pass: its report, or the error that stopped it (retried on the next pass)."""

    table: str
    report: MaintenanceReport | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def maintain_tables(catalog: Any, s3: Any, config: MaintenanceConfig, *,
                    on_outcome: Callable[[TableOutcome], object] | None = None) -> list[TableOutcome]:
    """One pass: `maintain_table` on each of `config.tables` (default: every table), one after another.

    A table that fails is recorded with its error and the pass goes on. Listing the tables is not guarded: with the
    catalog unreachable there is no pass to make, and the caller (the worker's periodic loop) retries it.
    on_outcome: called after each table (the worker logs it; `fyp maintain` prints it).
    """
    from fyp.lake import table_names

    outcomes = []
    for name in config.tables or tuple(table_names(catalog)):
        try:
            report = maintain_table(catalog.load_table(name), s3, older_than=config.older_than,
                                    target_bytes=config.target_bytes, name=name)
            outcome = TableOutcome(table=name, report=report)
        except Exception as exc:  # one table's failure must not stop the others, nor the worker
            outcome = TableOutcome(table=name, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
            log.debug("maintenance of %s failed", name, exc_info=True)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


def describe(outcome: TableOutcome) -> str:
    """One log line per table.

    >>> describe(TableOutcome(table="history.videos", error="CommitFailedException: stale"))
    'history.videos: FAILED (CommitFailedException: stale); retried next pass'
    """
    if outcome.report is None:
        return f"{outcome.table}: FAILED ({outcome.error}); retried next pass"
    r = outcome.report
    c, e, o = r.compaction, r.expiry, r.orphans
    return (f"{outcome.table}: data files {c.before.files:,} -> {c.after.files:,} ({c.bins_rewritten} bins, "
            f"{c.conflicts} conflicts), rows {c.rows_before:,} -> {c.rows_after:,}, snapshots "
            f"{e.snapshots_before:,} -> {e.snapshots_after:,}, orphans deleted {o.deleted.files:,} "
            f"({o.too_recent:,} too recent); {r.elapsed_s:.1f} s")
