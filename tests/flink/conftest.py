"""Fixtures for job-builder tests: a local PyFlink TableEnvironment (mini cluster) with fyp's jars."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyflink.table import EnvironmentSettings, TableEnvironment

JARS = Path(__file__).resolve().parents[2] / "build" / "jars" / "flink"


@pytest.fixture
def t_env() -> TableEnvironment:
    return new_t_env()


def new_t_env() -> TableEnvironment:
    """A fresh streaming TableEnvironment with fyp's jars (e.g. one per hypothesis example)."""
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    config.set("parallelism.default", "1")
    config.set("python.execution-mode", "process")
    jars = sorted(JARS.glob("fyp-*.jar"))
    if jars:
        config.set("pipeline.jars", ";".join(j.as_uri() for j in jars))
    return env


def final_rows(table_result, key_width: int) -> dict[tuple, tuple]:
    """Apply a changelog (+I/+U/-U/-D) and return the final row per key (the first `key_width` fields)."""
    from pyflink.common import RowKind

    state: dict[tuple, tuple] = {}
    with table_result.collect() as results:
        for row in results:
            values = tuple(row)
            key = values[:key_width]
            if row.get_row_kind() in (RowKind.INSERT, RowKind.UPDATE_AFTER):
                state[key] = values
            elif row.get_row_kind() == RowKind.DELETE:
                state.pop(key, None)
    return state
