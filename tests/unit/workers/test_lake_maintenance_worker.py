"""The lake-maintenance worker's loop: a failed table is logged and retried, never the end of the worker; a one-off
run with a failed table fails. A catalog that fails every table stands in for the Iceberg REST catalog."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest

from fyp.config import load_settings
from fyp.lake.schedule import MaintenanceConfig, TableOutcome
from tests.unit.fyp.lake.test_lake_schedule import UnreachableTables


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FYP_HOME", str(tmp_path / "home"))
    load_settings.cache_clear()
    yield load_settings()
    load_settings.cache_clear()


def test_the_worker_survives_failed_tables_and_a_one_off_run_fails(home, monkeypatch, caplog) -> None:
    import connectors.iceberg_tables
    import fyp.stack.seaweedfs
    from workers.lake_maintenance import MaintenanceFailed, run

    monkeypatch.setattr(connectors.iceberg_tables, "catalog", lambda settings: UnreachableTables())
    monkeypatch.setattr(fyp.stack.seaweedfs, "s3_client", lambda settings: None)
    stop, outcomes = threading.Event(), []

    def record(outcome: TableOutcome) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 4:  # two passes of two tables
            stop.set()

    caplog.set_level(logging.INFO, logger="fyp.lake_maintenance")
    config = MaintenanceConfig(every=timedelta(seconds=1))
    assert run(config, stop=stop, on_outcome=record) == 2
    summaries = [r.message for r in caplog.records if r.message.startswith("lake maintenance pass:")]
    assert len(summaries) == 2 and "2 tables, 2 failed (history.engagement_events, history.videos)" in summaries[0]
    with pytest.raises(MaintenanceFailed, match=r"maintenance failed for history\.engagement_events, history\.videos"):
        run(config, once=True, on_outcome=lambda outcome: None)
