"""`fyp candidates --region --language`: a bad market is refused before any service is asked, naming the option;
a good one travels in the query."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.testing import CliRunner

from fyp.cli import app
from fyp.commands import index as index_command


def _plain(output: str) -> str:
    """The output without rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


@pytest.mark.parametrize(("options", "message"), [
    (["--region", "US"], "give both or neither"),
    (["--region", "U:S", "--language", "en"], "holds ':'"),
    (["--region", "US", "--language", "x" * 36], "more than the 35"),
])
def test_a_bad_market_is_refused_before_the_service_is_asked(options, message, monkeypatch):
    monkeypatch.setattr(index_command, "_get", lambda *a: pytest.fail("the service was asked"))
    result = CliRunner().invoke(app, ["candidates", "--user", "new", *options])
    assert result.exit_code == 2
    assert message in _plain(result.output)


def test_the_market_travels_in_the_query(monkeypatch):
    asked: list[dict[str, Any]] = []

    def get(url, path, params):
        asked.append(params)
        return {"user": "new", "k": 5, "results": [{"video_id": "t1", "score": 1.0, "source": "trending"}],
                "sources": {}, "filters": {"recent_seen": 0, "hidden": 0}, "timings_ms": {}, "took_ms": 1.0,
                "market": {"market": "FR:fr", "from": "request", "market_videos": 1, "global_videos": 0}}

    monkeypatch.setattr(index_command, "_get", get)
    result = CliRunner().invoke(app, ["candidates", "--user", "new", "--k", "5", "--region", "FR", "--language",
                                      "fr"])
    assert result.exit_code == 0, result.output
    assert asked == [{"user": "new", "k": 5, "sources": "all", "region": "FR", "language": "fr"}]
    assert "market FR:fr (from request), 1 market and 0 global videos" in _plain(result.output)
