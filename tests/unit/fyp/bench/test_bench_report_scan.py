"""`fyp bench experiment-report`'s parts on a tiny history: each mode (run in this process here; the bench runs
each in its own) reads the same rows, the streaming modes find the same exposed users, and the command refuses a
warehouse that exists before writing anything."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from fyp.bench.report_scan import MODES, _one, build_history
from fyp.commands import bench


def test_every_mode_reads_the_same_history(tmp_path) -> None:
    warehouse = tmp_path / "w"
    assert build_history(warehouse, users=40, events_per_user=5, days=1, appends=1) == 200
    results = {mode: _one(mode, warehouse) for mode in MODES}
    assert results["stream"]["users"] == results["batch_reader"]["users"]
    assert 0 < results["stream"]["users"] <= results["whole"]["users"] <= 40
    assert all(r["peak_rss_mib"] >= r["rss_before_mib"] > 0 and r["wall_s"] > 0 for r in results.values())


def test_an_existing_warehouse_is_refused(tmp_path) -> None:
    app = typer.Typer()
    group = typer.Typer()
    bench.register(group)
    app.add_typer(group, name="bench")
    result = CliRunner().invoke(app, ["bench", "experiment-report", "--warehouse", str(tmp_path)])
    assert result.exit_code == 1 and "exists" in result.output
