"""The scheduled maintenance's settings and one pass over several tables, without the stack: a catalog that fails
every table stands in for the Iceberg REST catalog (the real one: tests/integration/test_lake_maintenance_schedule.py).
"""

from __future__ import annotations

import doctest
from datetime import timedelta

import pytest

import fyp.lake.schedule as schedule
from fyp.lake.compaction import CompactionReport, FileSet
from fyp.lake.maintenance import ExpiryReport, MaintenanceReport, OrphanReport
from fyp.lake.schedule import MaintenanceConfig, TableOutcome, describe, maintain_tables


class UnreachableTables:
    """A catalog that lists two tables and fails to load either, each its own way."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def list_namespaces(self) -> list[tuple[str, ...]]:
        return [("history",)]

    def list_tables(self, namespace: tuple[str, ...]) -> list[tuple[str, ...]]:
        return [(*namespace, "videos"), (*namespace, "engagement_events")]

    def load_table(self, name: str) -> None:
        self.loaded.append(name)
        raise (ConnectionError("catalog restarting") if name.endswith("videos") else KeyError(name))


def test_defaults_are_ten_minutes_and_an_hour() -> None:
    config = MaintenanceConfig.from_env({})
    assert (config.every, config.older_than, config.target_bytes, config.tables, config.allow_recent) == (
        timedelta(minutes=10), timedelta(hours=1), 128 * 2**20, (), False)


def test_environment_then_flags_override_the_defaults() -> None:
    environ = {"FYP_LAKE_MAINTENANCE_EVERY": "2m", "FYP_LAKE_MAINTENANCE_OLDER_THAN": "2h",
               "FYP_LAKE_MAINTENANCE_TARGET_FILE_MB": "64", "FYP_LAKE_MAINTENANCE_TABLES": "history.videos,a.b"}
    config = MaintenanceConfig.from_env(environ, every=timedelta(seconds=30), tables=None)
    assert config.every == timedelta(seconds=30) and config.older_than == timedelta(hours=2)
    assert config.target_bytes == 64 * 2**20 and config.tables == ("history.videos", "a.b")


@pytest.mark.parametrize(("environ", "match"), [
    ({"FYP_LAKE_MAINTENANCE_EVERY": "soon"}, "FYP_LAKE_MAINTENANCE_EVERY='soon': .* not a duration"),
    ({"FYP_LAKE_MAINTENANCE_EVERY": "0s"}, "every 0:00:00 is not between"),
    ({"FYP_LAKE_MAINTENANCE_EVERY": "8d"}, "is not between 0:00:01 and 7 days"),
    ({"FYP_LAKE_MAINTENANCE_OLDER_THAN": "5m"}, "could delete files a running writer has not committed"),
    ({"FYP_LAKE_MAINTENANCE_OLDER_THAN": "400d"}, "is not between 0 and 365 days"),
    ({"FYP_LAKE_MAINTENANCE_TARGET_FILE_MB": "0"}, "not between 1 MiB and 4 GiB"),
    ({"FYP_LAKE_MAINTENANCE_TARGET_FILE_MB": "-3"}, "not a whole number of MiB"),
    ({"FYP_LAKE_MAINTENANCE_TABLES": "history.videos;DROP"}, "is not a table name like namespace.table"),
    ({"FYP_LAKE_MAINTENANCE_TABLES": "videos"}, "is not a table name"),
    ({"FYP_LAKE_MAINTENANCE_TABLES": ",".join(f"a.t{i}" for i in range(257))}, "257 tables named; at most 256"),
    ({"FYP_LAKE_MAINTENANCE_TABLES": "a.b" * 30_000}, "longer than 64 KiB"),
    ({"FYP_LAKE_MAINTENANCE_ALLOW_RECENT": "yes"}, "not 0 or 1"),
])
def test_bad_settings_are_refused_with_the_variable_named(environ: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MaintenanceConfig.from_env(environ)


def test_a_short_age_needs_allow_recent() -> None:
    environ = {"FYP_LAKE_MAINTENANCE_OLDER_THAN": "10s", "FYP_LAKE_MAINTENANCE_ALLOW_RECENT": "1"}
    assert MaintenanceConfig.from_env(environ).older_than == timedelta(seconds=10)


def test_a_failed_table_is_recorded_and_the_pass_goes_on() -> None:
    catalog, seen = UnreachableTables(), []
    outcomes = maintain_tables(catalog, s3=None, config=MaintenanceConfig(), on_outcome=seen.append)
    assert catalog.loaded == ["history.engagement_events", "history.videos"]  # every table, sorted
    assert seen == outcomes and [o.ok for o in outcomes] == [False, False]
    assert outcomes[1].error == "ConnectionError: catalog restarting"
    assert describe(outcomes[1]) == "history.videos: FAILED (ConnectionError: catalog restarting); retried next pass"


def test_named_tables_only() -> None:
    catalog = UnreachableTables()
    maintain_tables(catalog, s3=None, config=MaintenanceConfig(tables=("history.videos",)))
    assert catalog.loaded == ["history.videos"]


def test_describe_a_maintained_table() -> None:
    files = FileSet(files=12, bytes=1200)
    report = MaintenanceReport(
        table="history.videos", elapsed_s=1.25,
        compaction=CompactionReport(before=files, after=FileSet(files=2, bytes=1100), rows_before=60, rows_after=60,
                                    bins_rewritten=2, files_rewritten=12, files_written=2, rows_rewritten=60,
                                    conflicts=1),
        expiry=ExpiryReport(snapshots_before=8, snapshots_after=1, referenced_before=files, referenced_after=files),
        orphans=OrphanReport(before=files, after=files, deleted=FileSet(files=14, bytes=1), too_recent=3))
    assert describe(TableOutcome(table="history.videos", report=report)) == (
        "history.videos: data files 12 -> 2 (2 bins, 1 conflicts), rows 60 -> 60, snapshots 8 -> 1, orphans "
        "deleted 14 (3 too recent); 1.2 s")


def test_docstring_examples_run() -> None:
    assert doctest.testmod(schedule).failed == 0
