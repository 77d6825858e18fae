"""The scheduled lake maintenance keeps a table's data files and snapshots bounded while small appends keep landing,
and every row stays.

The worker runs as `fyp up` runs it: a `LakeMaintenanceService` process (`fyp worker lake-maintenance`, configured by
FYP_LAKE_MAINTENANCE_*), here every 3 s, on a scratch table with the history table's layout that only this test
writes, and on a table that does not exist (its failure is logged on every pass and never stops the worker).
Orphans older than 10 s (with allow-recent) is safe here: the only writer is this test's pyiceberg appender, which
commits each file within a second or two of writing it. A Flink writer commits only on checkpoints: the default
1 h is for it.
"""

from __future__ import annotations

import time

import pytest

from fyp.stack.lake_maintenance import PASS_MARK, LakeMaintenanceService
from fyp.stack.seaweedfs import s3_client
from tests.integration.test_lake import rows

pytestmark = pytest.mark.integration

EVENT_TYPES = ("watch", "like", "share", "comment", "skip", "follow")  # 6 partitions of one day
ROWS_PER_APPEND = 5
APPEND_GAP_S = 0.7  # with the append's own time, a commit every ~1.1 s, each to one partition: each every ~7 s
RUN_S = 100
SETTLE_S = 20  # samples before this are not held to the bounds: the first passes catch up
MISSING = "history.no_such_table_it"
# Without maintenance each append leaves a data file and a snapshot: 65 to 90 of each over RUN_S. With a pass every
# 3 s, a partition holds its compacted file plus the appends since the last pass (a pass takes 3 to 15 s on this
# shared 2-core machine at load 12, measured), and a snapshot lives 10 s (older-than) plus the time to the next pass.
# Measured at load 12-13: at most 16-17 data files and 29-42 snapshots. A partition written to more often than its
# bin can be rewritten is not compacted meanwhile (docs/OPERATIONS.md, "Lake maintenance"): a writer committing to
# each partition every ~5 s here left the data files growing, so this writer leaves each partition quiet spells,
# as the history job's 60 s checkpoints do.
MAX_DATA_FILES = 30
MAX_SNAPSHOTS = 55


class ScratchMaintenance(LakeMaintenanceService):
    name = "lake-maintenance-it"  # beside the stack's own worker, with a pid file and log of its own


def _this_run(worker: LakeMaintenanceService) -> str:
    """The worker's log since its last start (the log is appended to across starts)."""
    text = worker.log_file.read_text()
    return text[text.rfind("lake maintenance every"):]


def _passes(worker: LakeMaintenanceService) -> list[str]:
    return [line for line in _this_run(worker).splitlines() if PASS_MARK in line]


def test_scheduled_maintenance_bounds_files_and_snapshots_while_appends_land(settings, lake, scratch, monkeypatch):
    name = ".".join(scratch.name()[-2:])
    monkeypatch.setenv("FYP_LAKE_MAINTENANCE_EVERY", "3s")
    monkeypatch.setenv("FYP_LAKE_MAINTENANCE_OLDER_THAN", "10s")
    monkeypatch.setenv("FYP_LAKE_MAINTENANCE_ALLOW_RECENT", "1")
    monkeypatch.setenv("FYP_LAKE_MAINTENANCE_TABLES", f"{name},{MISSING}")
    worker = ScratchMaintenance(settings)
    worker.start()
    appends, samples = 0, []  # samples: (seconds since start, live data files, snapshots)
    try:
        started = last_sample = time.monotonic()
        while (elapsed := time.monotonic() - started) < RUN_S:
            event_type = EVENT_TYPES[appends % len(EVENT_TYPES)]
            scratch.append(rows(scratch, video_id=f"v{appends}", event_type=event_type, n=ROWS_PER_APPEND))
            appends += 1
            if time.monotonic() - last_sample >= 1:
                current = lake.load_table(name)
                summary = current.current_snapshot().summary.additional_properties
                samples.append((round(elapsed), int(summary["total-data-files"]), len(current.metadata.snapshots)))
                last_sample = time.monotonic()
            time.sleep(APPEND_GAP_S)
        assert worker.pid() is not None, f"the worker exited:\n{worker.log_file.read_text()[-3000:]}"
        assert len(_passes(worker)) >= 3, worker.log_file.read_text()[-3000:]
        detail = worker.health().detail
    finally:
        worker.stop()

    print(f"\n{appends} appends; (s, data files, snapshots): {samples}")
    settled = [s for s in samples if s[0] >= SETTLE_S]
    assert appends > MAX_SNAPSHOTS and len(settled) >= 30, (appends, samples)
    assert max(files for _, files, _ in settled) <= MAX_DATA_FILES, samples
    assert max(snapshots for _, _, snapshots in settled) <= MAX_SNAPSHOTS, samples
    final = lake.load_table(name)
    assert int(final.current_snapshot().summary.additional_properties["total-data-files"]) < appends / 3
    every_row = final.scan(selected_fields=("event_id",)).to_arrow().column("event_id").to_pylist()
    assert len(every_row) == len(set(every_row)) == appends * ROWS_PER_APPEND  # none lost, none doubled
    bucket, prefix = final.location().removeprefix("s3://").split("/", 1)
    pages = s3_client(settings).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    print(f"objects under the table's location at the end: {sum(p.get('KeyCount', 0) for p in pages)}")

    passes = _passes(worker)
    assert all(f"1 failed ({MISSING})" in line for line in passes), passes[-3:]
    log = _this_run(worker)
    assert f"{MISSING}: FAILED (NoSuchTableError" in log and "Traceback" not in log
    assert detail.startswith("last pass ") and f"2 tables, 1 failed ({MISSING})" in detail, detail
