"""The report's scans (fyp/experiments/history.py) on a real Iceberg table: a local one laid out as the stack's
engagement history (SQLite catalog, Parquet files), written by `fyp bench experiment-report`'s generator. Both
passes, file by file, give the sums of the in-memory computation over the same table read whole, the window
filter keeps its rows only, and the command's `--json` stays one JSON object on stdout with `--progress` on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from fyp.bench.report_scan import EXPERIMENT, _catalog, build_history
from fyp.experiments.history import fold_window
from fyp.experiments.report import COLUMNS
from tests.unit.fyp.experiments.test_fold import _in_memory_per_user

TABLE = "bench.engagement_history"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    warehouse = Path(tmp_path_factory.mktemp("history")) / "warehouse"
    build_history(warehouse, users=300, events_per_user=8, days=3, appends=2)
    return _catalog(warehouse).load_table(TABLE)


def _whole(table, since_ms: int | None = None, until_ms: int | None = None) -> pd.DataFrame:
    arrow = table.scan(selected_fields=COLUMNS).to_arrow()
    frame = arrow.drop(["event_time"]).to_pandas()
    frame["event_time"] = arrow.column("event_time").cast(pa.int64()).to_numpy() // 1000
    frame["arms"] = [list(a) if a is not None else [] for a in frame["arms"]]
    keep = np.ones(len(frame), dtype=bool)
    if since_ms is not None:
        keep &= frame["event_time"] >= since_ms
    if until_ms is not None:
        keep &= frame["event_time"] < until_ms
    return frame[keep]


def test_both_scans_equal_the_whole_table_in_memory(table) -> None:
    assert len(table.inspect.files()) > 2  # several files: the scan goes file by file
    exposures, sums = fold_window(table, EXPERIMENT)
    expected, arm_of, conflicted = _in_memory_per_user(_whole(table), EXPERIMENT)
    assert 250 < len(expected) <= 300 and exposures.conflicted == conflicted == []  # users with an impression
    pd.testing.assert_series_equal(exposures.arm_of, arm_of, check_names=False)
    pd.testing.assert_frame_equal(sums, expected.astype(float), check_names=False)


def test_the_window_is_filtered_in_the_scan(table) -> None:
    times = _whole(table)["event_time"]
    since = int(times.min()) // 86_400_000 * 86_400_000 + 86_400_000 + 3_600_000  # 01:00 of the second day
    until = since + 86_400_000
    _, sums = fold_window(table, EXPERIMENT, since_ms=since, until_ms=until)
    expected, _, _ = _in_memory_per_user(_whole(table, since, until), EXPERIMENT)
    assert 0 < len(expected) < len(_in_memory_per_user(_whole(table), EXPERIMENT)[0])
    pd.testing.assert_frame_equal(sums, expected.astype(float), check_names=False)


def test_json_stays_clean_with_a_progress_bar(table, monkeypatch) -> None:
    import connectors.iceberg_tables as tables
    from fyp.commands import experiment

    monkeypatch.setattr(tables, "catalog", lambda settings: type("C", (), {"load_table": lambda self, n: table})())
    app = typer.Typer()
    experiment.register(app)
    result = CliRunner().invoke(app, ["experiment", "report", EXPERIMENT, "--json", "--progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sum(a["users"] for a in report["arms"]) == len(fold_window(table, EXPERIMENT)[0].first)
