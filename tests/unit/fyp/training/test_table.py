"""fyp.training.table: the Iceberg schema is the backfill's columns, in order, and the fingerprint follows the
declaration."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from pyiceberg.expressions import AlwaysTrue

from fyp.training.backfill import backfill
from fyp.training.table import SPINE_COLUMNS, days_filter, fingerprint, iceberg_schema
from tests.unit.fyp.training.streams import MINUTE, T0, event, history
from training import watch_outcomes


def test_the_backfilled_rows_cast_to_the_tables_schema_column_for_column():
    hist = history([event("watch", T0), event("impression", T0 + 1), event("like", T0 + 30 * MINUTE)])
    built = backfill(watch_outcomes.v1, hist).table
    schema = iceberg_schema(watch_outcomes.v1)
    assert built.column_names == [f.name for f in schema.fields]
    assert built.column_names[:len(SPINE_COLUMNS)] == list(SPINE_COLUMNS)
    cast = built.cast(schema.as_arrow())  # what write_days writes
    assert cast.num_rows == 1 and str(cast.schema.field("video_engagement__plays_1h").type) == "float"
    assert cast.column("user_engagement__plays_1m")[0].as_py() == 1.0
    assert cast.column("sound_engagement__plays_1m")[0].as_py() == 1.0
    assert cast.column("recent_positives")[0].as_py() == ["v1"]


def test_the_fingerprint_changes_with_the_declaration():
    longer = replace(watch_outcomes.v1.labels[0], within=timedelta(minutes=20))
    changed = replace(watch_outcomes.v1, labels=(longer, *watch_outcomes.v1.labels[1:]))
    assert fingerprint(changed) != fingerprint(watch_outcomes.v1) == fingerprint(replace(watch_outcomes.v1))


def test_days_filter_covers_whole_utc_days_and_refuses_a_reversed_range() -> None:
    assert days_filter(None, None) == AlwaysTrue()
    text = str(days_filter(date(2026, 1, 1), date(2026, 1, 2)))
    assert "2026-01-01T00:00:00+00:00" in text and "2026-01-03T00:00:00+00:00" in text  # until is inclusive
    with pytest.raises(ValueError, match="before --since"):
        days_filter(date(2026, 1, 3), date(2026, 1, 2))
