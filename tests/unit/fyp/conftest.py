"""Fixtures shared by the unit tests of `fyp`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fyp.config import Settings, load_settings


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Iterator[Settings]:
    """The settings of an empty FYP_HOME in a temporary directory (no stack runs there). A test module may define
    its own `settings`, which then takes precedence."""
    monkeypatch.setenv("FYP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FYP_PORT_OFFSET", "1000")
    load_settings.cache_clear()
    yield load_settings()
    load_settings.cache_clear()
