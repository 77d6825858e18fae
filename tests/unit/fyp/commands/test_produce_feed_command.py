"""`fyp produce --feed`: open-loop-only options and a bad plan are one clear error before anything connects, and
`fyp serve feed --experiments` refuses a file whose arm names a head the ranker lacks."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fyp.cli import app

runner = CliRunner()


def test_open_loop_options_are_refused_with_feed() -> None:
    for option in (["--events", "5"], ["--rate", "100"]):  # the users' sessions pace a closed loop, not --rate
        result = runner.invoke(app, ["produce", "--feed", "http://127.0.0.1:1", *option])
        assert result.exit_code == 1 and "--events, --rate, --late-fraction and --malformed-fraction" in result.output


def test_a_bad_plan_is_refused_before_connecting() -> None:
    result = runner.invoke(app, ["produce", "--feed", "http://127.0.0.1:1", "--sessions", "1", "--duration", "5"])
    assert result.exit_code == 1 and "either sessions per user or a duration" in result.output
    result = runner.invoke(app, ["produce", "--feed", "http://127.0.0.1:1", "--sessions", "1", "--feed-size", "0"])
    assert result.exit_code == 1 and "feed size must be in 1..100" in result.output


def test_sessions_need_a_feed() -> None:
    result = runner.invoke(app, ["produce", "--sessions", "2"])
    assert result.exit_code == 2 and "--sessions needs --feed URL" in result.output


def test_serve_feed_refuses_an_override_of_no_head(tmp_path: Path) -> None:
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps({"experiments": [{
        "name": "x", "layer": "ranking", "traffic_percent": 100, "start_ms": 0,
        "arms": [{"name": "control"}, {"name": "b", "overrides": {"ranker.weights.bogus": 1}}]}]}))
    result = runner.invoke(app, ["serve", "feed", "--experiments", str(path)])
    assert result.exit_code == 1 and "no head 'bogus'" in result.output
