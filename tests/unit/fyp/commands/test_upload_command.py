"""`fyp upload` refuses an empty file itself, in one line and exit 1, before it creates an upload: the API would
refuse its declared size of 0 anyway (docs/UPLOADS.md, "Limits and refusal reasons")."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fyp.cli import app
from fyp.commands import uploads

runner = CliRunner()


def test_an_empty_file_is_refused_before_any_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FYP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FYP_UPLOAD_API", raising=False)
    called: list[Path] = []
    monkeypatch.setattr(uploads, "upload_file", lambda path, *_args, **_kwargs: called.append(path))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")

    result = runner.invoke(app, ["upload", str(empty), "--author", "a1", "--no-wait"])

    assert result.exit_code == 1, result.output
    assert "is empty" in " ".join(result.output.split())  # rich wraps a long tmp path's line
    assert called == []  # nothing was created, PUT or completed
