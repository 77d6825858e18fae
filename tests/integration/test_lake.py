"""`fyp sql`, `fyp tables`, `fyp maintain` and schema evolution on the real SeaweedFS Iceberg catalog.

Only SeaweedFS is needed. Rows are appended with pyiceberg under a video id of their own, so the Flink history
job (which other tests may leave running) cannot change the counts. Maintenance and evolution run on scratch
tables with the history table's layout: `--older-than 0s` must never meet files the Flink job is writing.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import NestedField, StringType
from typer.testing import CliRunner

import fyp.lake.compaction as compaction
from connectors.iceberg_tables import catch_up_columns, engagement_history_schema, upload_events_schema
from fyp.commands import lake as lake_commands
from fyp.lake.evolution import add_optional_column
from schemas.tables import ENGAGEMENT_HISTORY

pytestmark = pytest.mark.integration

DAY = datetime(2025, 3, 14, tzinfo=UTC)  # a day of its own: the Flink job writes today's partitions


def fyp(*args: str, ok: bool = True):
    app = typer.Typer()
    lake_commands.register(app)
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, f"fyp {' '.join(args)} failed:\n{result.output}"
    return json.loads(result.stdout) if ok and "--json" in args else result


def rows(table: Table, *, video_id: str, event_type: str, n: int, day: datetime = DAY, **extra) -> pa.Table:
    return pa.Table.from_pylist([
        {"event_type": event_type, "event_id": str(uuid.uuid4()), "event_time": day + timedelta(minutes=i),
         "user_id": f"u{i % 3}", "video_id": video_id, "watch_ms": 1000 * i, **extra}
        for i in range(n)
    ], schema=table.schema().as_arrow())


def test_sql_counts_rows_and_prunes_files(lake):
    history, video = lake.load_table(ENGAGEMENT_HISTORY), f"v-lake-{uuid.uuid4().hex[:8]}"
    history.append(pa.concat_tables([rows(history, video_id=video, event_type="watch", n=3),
                                     rows(history, video_id=video, event_type="like", n=2)]))

    report = fyp("sql", f"SELECT event_type, count(*) AS n FROM history.engagement_events "
                        f"WHERE video_id = '{video}' GROUP BY 1 ORDER BY 1", "--json")
    assert report["rows"] == [{"event_type": "like", "n": 2}, {"event_type": "watch", "n": 3}]

    report = fyp("sql", f"SELECT count(*) AS n FROM history.engagement_events WHERE event_type = 'like' "
                        f"AND event_time >= '{DAY.date()}' AND event_time < DATE '{(DAY + timedelta(days=1)).date()}' "
                        f"AND video_id = '{video}'", "--json")
    assert report["rows"] == [{"n": 2}]
    (scan,) = report["scans"]
    assert scan["rows_scanned"] == 2  # the residual filter ran in pyiceberg, before DuckDB
    assert 1 <= scan["files_planned"] < scan["files_total"], scan  # the watch partition was never opened
    assert "event_type = 'like'" in scan["row_filter"] and scan["columns"] == ["event_type", "event_time", "video_id"]


def test_as_of_reads_an_older_snapshot(lake):
    history, video = lake.load_table(ENGAGEMENT_HISTORY), f"v-lake-{uuid.uuid4().hex[:8]}"
    history.append(rows(history, video_id=video, event_type="share", n=2))
    first = history.current_snapshot()
    history.append(rows(history, video_id=video, event_type="share", n=3))
    query = f"SELECT count(*) AS n FROM history.engagement_events WHERE video_id = '{video}'"

    assert fyp("sql", query, "--json")["rows"] == [{"n": 5}]
    assert fyp("sql", query, "--as-of", str(first.snapshot_id), "--json")["rows"] == [{"n": 2}]
    at = datetime.fromtimestamp(first.timestamp_ms / 1000, UTC).isoformat()
    assert fyp("sql", query, "--as-of", at, "--json")["rows"] == [{"n": 2}]
    too_early = fyp("sql", query, "--as-of", "2000-01-01", ok=False)
    assert too_early.exit_code == 1 and "no snapshot at or before" in too_early.output


def test_out_writes_readable_parquet_and_csv(lake, tmp_path):
    history, video = lake.load_table(ENGAGEMENT_HISTORY), f"v-lake-{uuid.uuid4().hex[:8]}"
    history.append(rows(history, video_id=video, event_type="comment", n=4, comment_text="nice"))
    query = f"SELECT * FROM history.engagement_events WHERE video_id = '{video}' ORDER BY event_time"

    fyp("sql", query, "--out", str(tmp_path / "x.parquet"))
    written = pq.read_table(tmp_path / "x.parquet")
    assert written.num_rows == 4 and set(written.column("comment_text").to_pylist()) == {"nice"}
    fyp("sql", query, "--out", str(tmp_path / "x.csv"), "--limit", "3")
    assert len((tmp_path / "x.csv").read_text().splitlines()) == 1 + 3


def test_unknown_tables_and_bad_sql_fail_cleanly(lake):
    unknown = fyp("sql", "SELECT * FROM history.no_such_table", ok=False)
    assert unknown.exit_code == 1 and "unknown table history.no_such_table" in unknown.output
    bad = fyp("sql", "SELEC 1", ok=False)
    assert bad.exit_code == 1 and "syntax error" in bad.output
    assert "Traceback" not in unknown.output + bad.output


def test_tables_json_lists_the_history_table(lake):
    tables = {t["name"]: t for t in fyp("tables", "--json")["tables"]}
    history = tables[ENGAGEMENT_HISTORY]
    assert history["partition_spec"] == ["day(event_time) AS event_day", "event_type"]
    assert history["sort_order"] == ["user_id ASC NULLS FIRST", "video_id ASC NULLS FIRST"]
    assert {"event_id", "event_time", "kafka_offset"} <= {c["name"] for c in history["columns"]}
    assert history["rows"] > 0 and history["data_files"] > 0 and history["snapshots"] > 0


def test_maintain_compacts_expires_and_removes_orphans_without_losing_rows(scratch):
    name = ".".join(scratch.name()[-2:])
    for batch in range(6):  # 6 commits x 2 partitions = 12 small files
        scratch.append(pa.concat_tables([rows(scratch, video_id=f"v{batch}", event_type=t, n=5)
                                         for t in ("watch", "like")]))
    count = f"SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM {name}"
    assert fyp("sql", count, "--json")["rows"] == [{"n": 60, "ids": 60}]

    (report,) = fyp("maintain", "--table", name, "--older-than", "0s", "--allow-recent", "--json")["tables"]

    compaction, expiry, orphans = report["compaction"], report["expiry"], report["orphans"]
    assert compaction["before"]["files"] == 12 and compaction["after"]["files"] == 2
    assert compaction["rows_before"] == compaction["rows_after"] == compaction["rows_rewritten"] == 60
    assert expiry["snapshots_before"] == 8 and expiry["snapshots_after"] == 1
    assert orphans["deleted"]["files"] >= 12 and orphans["after"]["files"] < orphans["before"]["files"]
    assert fyp("sql", count, "--json")["rows"] == [{"n": 60, "ids": 60}]  # no row lost or doubled
    again = fyp("maintain", "--table", name, "--older-than", "0s", "--allow-recent", "--json")["tables"][0]
    assert again["compaction"]["bins_rewritten"] == 0 and again["orphans"]["deleted"]["files"] == 0


def test_maintain_refuses_a_short_orphan_age_without_allow_recent():
    refused = fyp("maintain", "--older-than", "1m", ok=False)
    assert refused.exit_code == 1 and "--allow-recent" in refused.output


def test_compaction_replans_when_a_writer_commits_to_the_same_partition(scratch, lake, monkeypatch):
    for _ in range(3):
        scratch.append(rows(scratch, video_id="v", event_type="watch", n=3))
    write_files, raced = compaction._dataframe_to_data_files, []

    def racing_writer(**kwargs):
        written = list(write_files(**kwargs))
        if not raced:  # the Flink job commits to the same partition while the bin is being rewritten
            lake.load_table(scratch.name()[-2:]).append(rows(scratch, video_id="v", event_type="watch", n=3))
            raced.append(True)
        return written

    monkeypatch.setattr(compaction, "_dataframe_to_data_files", racing_writer)
    report = compaction.compact(scratch, target_bytes=128 * 2**20)

    assert report.conflicts == 1 and report.bins_rewritten == 1 and report.files_rewritten == 4
    scratch.refresh()
    assert report.after.files == 1 and scratch.scan().to_arrow().num_rows == 12


def test_added_column_reads_null_for_old_rows_and_lands_for_new_ones(scratch):
    name = ".".join(scratch.name()[-2:])
    scratch.append(rows(scratch, video_id="old", event_type="watch", n=3))
    assert add_optional_column(scratch, "watch_quality", "string", doc="player-reported quality",
                               after="arms") is True
    assert add_optional_column(scratch, "watch_quality", "string") is False  # idempotent
    names = [f.name for f in scratch.schema().fields]
    assert names[-3:] == ["watch_quality", "kafka_partition", "kafka_offset"]  # the job's SELECT order
    scratch.append(rows(scratch, video_id="new", event_type="watch", n=2, watch_quality="hd"))

    report = fyp("sql", f"SELECT video_id, watch_quality, count(*) AS n FROM {name} GROUP BY ALL ORDER BY 1",
                 "--json")
    assert report["rows"] == [{"video_id": "new", "watch_quality": "hd", "n": 2},
                              {"video_id": "old", "watch_quality": None, "n": 3}]
    with pytest.raises(ValueError, match="already exists as string"):
        add_optional_column(scratch, "watch_quality", "long")


def test_a_history_from_before_impression_v2_gains_arms_after_comment_text(lake):
    """The engagement history of a stack created before Impression v2: `fyp up` adds `arms` (list<string>) where
    the row has it, before the Kafka coordinates; old rows read null, new rows land with their arms."""
    declared = engagement_history_schema()
    older = Schema(*(f for f in declared.fields if f.name != "arms"))
    name = f"history.lake_it_{uuid.uuid4().hex[:8]}"
    table = lake.create_table(name, schema=older, properties={"format-version": "2"})
    try:
        table.append(rows(table, video_id="v-old", event_type="impression", n=1))
        assert catch_up_columns(table, declared) == [f"{name}.arms"]
        table = lake.load_table(name)
        names = [f.name for f in table.schema().fields]
        assert names[names.index("comment_text"):] == ["comment_text", "arms", "kafka_partition", "kafka_offset"]
        table.append(rows(table, video_id="v-new", event_type="impression", n=1, arms=["exp:control"]))
        scanned = table.scan(selected_fields=("video_id", "arms")).to_arrow().to_pylist()
        found = {r["video_id"]: r["arms"] for r in scanned}
        assert found == {"v-old": None, "v-new": ["exp:control"]}
    finally:
        with contextlib.suppress(Exception):
            lake.purge_table(name)


def test_an_older_table_catches_up_with_its_declaration_in_the_declared_order(lake):
    """A stack created before the ladder's stage column and the renditions list: `fyp up` adds both where the
    declaration has them (the Flink job inserts by position), old rows read null."""
    declared = upload_events_schema()
    older = Schema(*(f for f in declared.fields if f.name not in ("stage", "renditions")))
    name = f"history.lake_it_{uuid.uuid4().hex[:8]}"
    table = lake.create_table(name, schema=older, properties={"format-version": "2"})
    try:
        table.append(pa.Table.from_pylist([{"event_type": "upload_completed", "event_id": "e1", "event_time": DAY,
                                            "video_id": "v-old"}], schema=table.schema().as_arrow()))
        assert catch_up_columns(table, declared) == [f"{name}.stage", f"{name}.renditions"]
        assert catch_up_columns(table, declared) == []
        table = lake.load_table(name)
        assert [f.name for f in table.schema().fields] == [f.name for f in declared.fields]
        old = table.scan().to_arrow().to_pylist()
        assert old[0]["video_id"] == "v-old" and old[0]["stage"] is None and old[0]["renditions"] is None
        with pytest.raises(ValueError, match="required columns"):
            catch_up_columns(table, Schema(*declared.fields, NestedField(999, "must_have", StringType(),
                                                                             required=True)))
    finally:
        with contextlib.suppress(Exception):
            lake.purge_table(name)
