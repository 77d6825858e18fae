"""The lake-maintenance worker as a service of the local stack, without starting it."""

from __future__ import annotations

import pytest

from fyp.config import load_settings
from fyp.stack.lake_maintenance import LakeMaintenanceService
from fyp.stack.services import all_services


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FYP_HOME", str(tmp_path / "home"))
    load_settings.cache_clear()
    yield load_settings()
    load_settings.cache_clear()


def test_the_stack_starts_the_worker_after_seaweedfs_and_reports_its_last_pass(home) -> None:
    names = [s.name for s in all_services(home)]
    assert names.index("seaweedfs") < names.index("lake-maintenance") < names.index("flink-jobmanager")
    service = LakeMaintenanceService(home)
    assert list(service.command())[1:] == ["-m", "fyp.cli", "worker", "lake-maintenance"]
    assert service.ports() == [] and service.check() == "first pass running"
    service.log_file.parent.mkdir(parents=True)
    service.log_file.write_text(
        "2026-12-06 18:22:18,617 INFO fyp.lake_maintenance lake maintenance pass: 1 table, 0 failed, 1.0 s\nnoise\n"
        "2026-12-06 18:32:18,617 INFO fyp.lake_maintenance lake maintenance pass: 2 tables, 1 failed (a.b), 2.0 s\n"
        "more noise\n")
    assert service.check() == "last pass 2026-12-06 18:32:18: 2 tables, 1 failed (a.b), 2.0 s"
