"""`fyp takedown`: its options become a `TakedownRequest`, bad input is one clear error and exit 1, and `--json`
prints what the service did. The service runs in-process over in-memory collaborators (the wiring is swapped
for them); the wiring itself is exercised by tests/integration/test_takedown.py."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fyp.cli import app
from fyp.uploads import wiring
from tests.unit.fyp.uploads.test_takedown_api import Desk

runner = CliRunner()


@pytest.fixture
def desk(monkeypatch: pytest.MonkeyPatch) -> Desk:
    desk = Desk()
    monkeypatch.setattr(wiring, "takedown_service", lambda _settings: desk.service)
    monkeypatch.delenv("FYP_UPLOAD_API", raising=False)
    return desk


def test_takedown_json(desk: Desk) -> None:
    result = runner.invoke(app, ["takedown", "v1", "--reason", "copyright", "--notice-id", "DMCA-7",
                                 "--claimant", "Label Ltd", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["action"], shown["notice_id"], shown["objects_moved"]) == ("takedown", "DMCA-7", 11)
    assert desk.audits[0].filed_by.startswith("cli:") and desk.audits[0].claimant == "Label Ltd"


def test_restore(desk: Desk) -> None:
    runner.invoke(app, ["takedown", "v1", "--reason", "copyright", "--notice-id", "DMCA-7"])
    desk.videos["v1"]["status"] = "removed"
    result = runner.invoke(app, ["takedown", "v1", "--restore", "--notice-id", "CN-7", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["action"] == "restore" and desk.emitted[-1][1]["reason"] == "counter-notice"


@pytest.mark.parametrize(("args", "message"), [
    (["v1", "--notice-id", "N-1"], "--reason is required"),
    (["v1", "--reason", "r", "--notice-id", "N 1"], "notice_id"),
    (["../v1", "--reason", "r", "--notice-id", "N-1"], "video_id"),
    (["v1", "--restore", "--notice-id", "N-1"], "not_removed"),
])
def test_bad_input_is_one_error_and_exit_1(desk: Desk, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["takedown", *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert desk.emitted == []
