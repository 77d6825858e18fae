"""Fixtures for job-builder tests: a local PyFlink TableEnvironment (mini cluster) with fyp's jars."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import EnvironmentSettings, StreamTableEnvironment, TableEnvironment

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


def new_stream_t_env(config: dict[str, str] | None = None) -> StreamTableEnvironment:
    """A streaming table environment over a DataStream one (as the features job runs: its key families and shared
    views are DataStream steps), with fyp's jars and `config` on top of parallelism 1 and Python process mode."""
    t_env = StreamTableEnvironment.create(StreamExecutionEnvironment.get_execution_environment(),
                                          EnvironmentSettings.in_streaming_mode())
    settings = t_env.get_config()
    for key, value in {"parallelism.default": "1", "python.execution-mode": "process", **(config or {})}.items():
        settings.set(key, value)
    settings.set("pipeline.jars", ";".join(j.as_uri() for j in sorted(JARS.glob("fyp-*.jar"))))
    return t_env


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


def raw_view(t_env: TableEnvironment, payloads: list[bytes], partitions: list[int] | None = None) -> None:
    """Register `raw_rows` (payload, kafka_partition, kafka_offset) and `raw` (+ proc_time), the shape of the
    jobs' Kafka source, over in-memory payloads (partition 0 unless given; offsets in order)."""
    from pyflink.table import DataTypes

    partitions = partitions if partitions is not None else [0] * len(payloads)
    rows = [(bytearray(p), partition, offset)  # PyFlink wants bytearray
            for offset, (p, partition) in enumerate(zip(payloads, partitions, strict=True))]
    schema = DataTypes.ROW([DataTypes.FIELD("payload", DataTypes.BYTES()),
                            DataTypes.FIELD("kafka_partition", DataTypes.INT()),
                            DataTypes.FIELD("kafka_offset", DataTypes.BIGINT())])
    # from_elements cannot infer anything from no rows: one empty payload stands in (a dead letter).
    t_env.create_temporary_view("raw_rows", t_env.from_elements(rows or [(bytearray(b""), 0, 0)], schema))
    t_env.create_temporary_view("raw", t_env.sql_query("SELECT *, PROCTIME() AS proc_time FROM raw_rows"))
