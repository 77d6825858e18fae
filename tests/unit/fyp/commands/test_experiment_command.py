"""`fyp experiment report`'s table output and argument checks (the report itself: tests/unit/fyp/experiments)."""

from __future__ import annotations

import typer
from rich.console import Console
from typer.testing import CliRunner

from fyp.commands import experiment
from tests.unit.fyp.experiments.test_report import _hand_table, report_of


def test_the_table_shows_every_arm_metric_and_the_srm_verdict(monkeypatch) -> None:
    console = Console(record=True, width=200)
    monkeypatch.setattr(experiment, "console", console)
    experiment.print_report(report_of(_hand_table(), "exp", declared_arms=("control", "treat"),
                                      weights={"control": 1, "treat": 1}))
    text = console.export_text()
    for expected in ("experiment exp: control control", "watch_ms", "completion_rate", "like_rate", "skip_rate",
                     "retention", "treat", "SRM (declared weights)", ": ok", "conflicted users (two arms): 1"):
        assert expected in text, expected
    assert "6300" in text and "-300" in text  # control's mean watch time and treat's difference (hand-counted)


def test_bad_arguments_fail_before_any_read() -> None:
    app = typer.Typer()
    experiment.register(app)
    runner = CliRunner()
    bad_name = runner.invoke(app, ["experiment", "report", "a:b"])
    assert bad_name.exit_code == 1 and "no ':'" in bad_name.output
    bad_date = runner.invoke(app, ["experiment", "report", "exp", "--since", "yesterday"])
    assert bad_date.exit_code == 1 and "ISO date or time" in bad_date.output
    backwards = runner.invoke(app, ["experiment", "report", "exp", "--since", "2026-12-07", "--until", "2026-12-06"])
    assert backwards.exit_code == 1 and "is not before" in backwards.output
