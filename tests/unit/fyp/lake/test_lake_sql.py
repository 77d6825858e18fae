"""fyp.lake.sql without services: which tables, which filter is pushed into each scan, which columns, --as-of."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime

import pytest
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    EqualTo,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
    NotEqualTo,
    NotIn,
    NotNull,
    Or,
)

import fyp.lake.sql as lake_sql
from connectors.iceberg_tables import engagement_history_schema
from fyp.lake.pushdown import describe_filter, needed_columns, pushdown_filters, referenced_tables
from fyp.lake.sql import AsOf, parse_as_of

T = "history.engagement_events"
SCHEMA = engagement_history_schema()
DAY = "2026-11-20T00:00:00.000000+00:00"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _filter(sql: str):
    return pushdown_filters(sql, {T: SCHEMA})[T]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("event_type = 'like'", EqualTo("event_type", "like")),
        ("'like' = event_type", EqualTo("event_type", "like")),
        ("e.event_type = 'like'", EqualTo("event_type", "like")),
        ("EVENT_TYPE <> 'like'", NotEqualTo("event_type", "like")),
        ("event_type IN ('like', 'share')", In("event_type", ("like", "share"))),
        ("event_type NOT IN ('like')", NotIn("event_type", ("like",))),
        ("watch_ms > 1000", GreaterThan("watch_ms", 1000)),
        ("-5 < watch_ms", GreaterThan("watch_ms", -5)),
        ("kafka_partition = 3", EqualTo("kafka_partition", 3)),
        ("action IS NULL", IsNull("action")),
        ("action IS NOT NULL", NotNull("action")),
        ("event_time >= '2026-11-20'", GreaterThanOrEqual("event_time", DAY)),
        ("event_time >= TIMESTAMP '2026-11-20 00:00:00'", GreaterThanOrEqual("event_time", DAY)),
        ("event_time < DATE '2026-11-20'", LessThan("event_time", DAY)),
        ("event_time <= TIMESTAMPTZ '2026-11-20 02:00:00+02:00'", LessThanOrEqual("event_time", DAY)),
        ("event_time >= '2026-11-20T01:00:00+01:00'", GreaterThanOrEqual("event_time", DAY)),
        ("watch_ms BETWEEN 1 AND 5", And(GreaterThanOrEqual("watch_ms", 1), LessThanOrEqual("watch_ms", 5))),
        ("event_type = 'like' AND user_id = 'u1'", And(EqualTo("event_type", "like"), EqualTo("user_id", "u1"))),
        ("(event_type = 'like' OR event_type = 'share') AND watch_ms > 0",
         And(Or(EqualTo("event_type", "like"), EqualTo("event_type", "share")), GreaterThan("watch_ms", 0))),
        # Only the parts it understands: the rest is left to DuckDB, which applies the whole WHERE anyway.
        ("event_type = 'like' AND lower(user_id) = 'u1'", EqualTo("event_type", "like")),
        ("event_type = 'like' AND watch_ms > video_duration_ms", EqualTo("event_type", "like")),
    ],
)
def test_simple_predicates_are_pushed_into_the_scan(where: str, expected) -> None:
    assert _filter(f"SELECT count(*) FROM {T} e WHERE {where}") == expected


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT * FROM {T}",  # no WHERE
        f"SELECT * FROM {T} WHERE event_type = 'like' OR lower(user_id) = 'u1'",  # OR with an unknown side
        f"SELECT * FROM {T} WHERE NOT event_type = 'like'",
        f"SELECT * FROM {T} WHERE event_type NOT BETWEEN 'a' AND 'b'",
        f"SELECT * FROM {T} WHERE event_type IN (SELECT 'like')",
        f"SELECT * FROM {T} WHERE user_id = 5",  # a number for a string column: DuckDB casts, pyiceberg would not
        f"SELECT * FROM {T} WHERE watch_ms = '5'",
        f"SELECT * FROM {T} WHERE event_time > now() - INTERVAL 1 HOUR",
        f"SELECT * FROM {T} WHERE event_time > TIMESTAMP '2026-11-20 00:00:00+02:00'",  # offset on a naive type
        f"SELECT * FROM {T} WHERE event_time > 'yesterday'",
        f"SELECT * FROM {T} WHERE action = NULL",
        f"SELECT * FROM {T} WHERE nope = 'x'",  # not a column of the table (DuckDB reports it)
        f"SELECT * FROM {T} USING SAMPLE 10% WHERE event_type = 'like'",  # sampling before the filter
        f"SELECT * FROM {T} TABLESAMPLE 10% WHERE event_type = 'like'",
        f"SELECT video_id AS event_type FROM {T} WHERE event_type = 'like'",  # an alias may shadow the column
        # Outer joins: the WHERE clause may test the null-extended side, e.g. an anti-join.
        f"SELECT * FROM dims.videos v LEFT JOIN {T} e ON e.video_id = v.video_id WHERE e.action IS NULL",
        f"SELECT * FROM {T} e FULL JOIN dims.videos v ON true WHERE e.event_type = 'like'",
        # The table twice: one scan serves both, so neither filter may apply.
        f"SELECT * FROM {T} a JOIN {T} b USING (user_id) WHERE a.event_type = 'like'",
        f"SELECT * FROM {T} WHERE event_type = 'like' UNION ALL SELECT * FROM {T}",
        # Unqualified columns in a join may belong to either table.
        f"SELECT * FROM {T} e JOIN dims.videos v ON e.video_id = v.video_id WHERE event_type = 'like'",
        "SELEC nonsense",
    ],
)
def test_anything_unsure_scans_the_whole_table(sql: str) -> None:
    assert _filter(sql) == AlwaysTrue()


def test_inner_joins_push_qualified_predicates_to_their_own_table() -> None:
    sql = (f"SELECT * FROM {T} e JOIN dims.videos v ON e.video_id = v.video_id "
           "WHERE e.event_type = 'like' AND v.author_id = 'a1'")
    assert _filter(sql) == EqualTo("event_type", "like")


def test_a_subquery_filters_its_own_scan_and_the_fully_qualified_name_works() -> None:
    sql = f"SELECT count(*) FROM (SELECT * FROM {T} WHERE {T}.event_type = 'like') s WHERE s.user_id = 'u1'"
    assert _filter(sql) == EqualTo("event_type", "like")


def test_referenced_tables_are_two_part_names() -> None:
    sql = f"WITH x AS (SELECT * FROM {T}) SELECT * FROM x JOIN Dims.Videos USING (video_id), memory.main.t"
    assert referenced_tables(sql) == ["dims.videos", T]


def test_referenced_tables_falls_back_to_duckdb_and_reports_bad_sql() -> None:
    with pytest.raises(lake_sql.LakeQueryError, match="syntax error"):
        referenced_tables("SELECT FROM WHERE")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (f"SELECT event_type, count(*) FROM {T} GROUP BY 1", ("event_type",)),
        (f"SELECT count(*) FROM {T}", ("event_type",)),  # one column still gives the row count
        (f"SELECT e.user_id FROM {T} e WHERE e.watch_ms > 0", ("user_id", "watch_ms")),
        (f"SELECT * FROM {T}", None),
        (f"SELECT e.* FROM {T} e", None),
        (f"SELECT e FROM {T} e", None),  # the row as a struct
        (f"SELECT COLUMNS('.*_ms') FROM {T}", None),
        (f"SELECT * FROM {T} NATURAL JOIN dims.videos", None),
        (f"DESCRIBE {T}", None),
        (f"SELECT 1 FROM {T} JOIN dims.videos USING (video_id)", ("video_id",)),
    ],
)
def test_needed_columns(sql: str, expected) -> None:
    assert needed_columns(sql, {T: SCHEMA})[T] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8118081468586779485", AsOf(snapshot_id=8118081468586779485)),
        ("2026-11-20T10:00:00Z", AsOf(timestamp_ms=_ms(datetime(2026, 11, 20, 10, tzinfo=UTC)))),
        ("2026-11-20T10:00:00", AsOf(timestamp_ms=_ms(datetime(2026, 11, 20, 10, tzinfo=UTC)))),  # naive is UTC
        ("2026-11-20 11:00:00.5+01:00", AsOf(timestamp_ms=_ms(datetime(2026, 11, 20, 10, 0, 0, 500_000, UTC)))),
        ("2026-11-20", AsOf(timestamp_ms=_ms(datetime(2026, 11, 20, tzinfo=UTC)))),
    ],
)
def test_parse_as_of(text: str, expected: AsOf) -> None:
    assert parse_as_of(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "12h"])
def test_parse_as_of_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="neither a snapshot id nor an ISO 8601 time"):
        parse_as_of(text)


def test_as_of_takes_exactly_one_of_its_fields() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        AsOf()


def test_describe_filter_renders_what_was_pushed() -> None:
    expression = And(GreaterThanOrEqual("event_time", DAY), In("event_type", ("like", "share")))
    assert describe_filter(expression) == f"event_time >= '{DAY}' AND event_type IN ('like', 'share')"


def test_docstring_examples_run() -> None:
    assert doctest.testmod(lake_sql).failed == 0


def test_output_paths_are_checked_before_a_query_runs(tmp_path) -> None:
    lake_sql.check_output_path(tmp_path / "rows.csv")
    lake_sql.check_output_path(tmp_path / "rows.PARQUET")
    with pytest.raises(lake_sql.LakeQueryError, match=r"write a \.csv or a \.parquet file"):
        lake_sql.check_output_path(tmp_path / "rows.tsv")
    with pytest.raises(lake_sql.LakeQueryError, match="no folder"):
        lake_sql.check_output_path(tmp_path / "missing" / "rows.csv")


def test_write_result_writes_csv_and_parquet(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = pa.table({"video_id": ["v1", "v2"], "plays": [3, 5]})
    lake_sql.write_result(rows, tmp_path / "rows.csv")
    assert (tmp_path / "rows.csv").read_text().splitlines() == ["video_id,plays", "v1,3", "v2,5"]
    lake_sql.write_result(rows, tmp_path / "rows.parquet")
    assert pq.read_table(tmp_path / "rows.parquet").equals(rows)
