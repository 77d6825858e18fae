"""fyp.lake.maintenance and fyp.lake.evolution without services: bin planning, partition filters, durations."""

from __future__ import annotations

import doctest
from datetime import timedelta

import pytest
from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, IsNull, LessThan
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import BucketTransform, DayTransform, HourTransform, IdentityTransform, MonthTransform
from pyiceberg.types import DateType, ListType, LongType, NestedField, StringType, TimestampType, TimestamptzType

import fyp.lake.evolution as evolution
import fyp.lake.maintenance as maintenance
from fyp.lake.compaction import partition_filter, plan_bins
from fyp.lake.evolution import iceberg_type
from fyp.lake.maintenance import parse_duration

MB = 2**20


def _bins(sizes_by_partition: dict[str, list[int]], target: int = 128 * MB) -> list[list[tuple[str, int]]]:
    files = [(p, size) for p, sizes in sizes_by_partition.items() for size in sizes]
    return plan_bins(files, size=lambda f: f[1], group=lambda f: f[0], target_bytes=target)


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ({"a": [1 * MB] * 4}, [[("a", MB)] * 4]),  # small files of one partition: one bin
        ({"a": [MB], "b": [MB]}, []),  # one small file per partition: nothing to gain
        ({"a": [MB, 120 * MB, 100 * MB]}, []),  # big files stay, and one small file alone is not rewritten
        ({"a": [MB, 2 * MB], "b": [MB, MB]}, [[("a", MB), ("a", 2 * MB)], [("b", MB), ("b", MB)]]),
        ({"a": [60 * MB, 60 * MB, 60 * MB]}, [[("a", 60 * MB), ("a", 60 * MB)]]),  # bins stop at the target
        ({"a": [96 * MB - 1, 10 * MB]}, [[("a", 10 * MB), ("a", 96 * MB - 1)]]),  # below 3/4 of 128 MiB is small
    ],
)
def test_plan_bins_packs_small_files_per_partition(sizes, expected) -> None:
    assert _bins(sizes) == expected


def test_plan_bins_rejects_a_silly_target() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        plan_bins([1], size=lambda s: s, group=lambda s: 0, target_bytes=0)


SCHEMA = Schema(
    NestedField(1, "event_time", TimestamptzType(), required=True),
    NestedField(2, "event_type", StringType(), required=True),
    NestedField(3, "local_time", TimestampType()),
    NestedField(4, "day", DateType()),
    NestedField(5, "user_id", StringType()),
)


def _spec(*fields: tuple[int, object]) -> PartitionSpec:
    return PartitionSpec(*(PartitionField(source, 1000 + i, transform, f"p{i}")
                           for i, (source, transform) in enumerate(fields)))


def _between(name: str, low: str, high: str):
    return And(GreaterThanOrEqual(name, low), LessThan(name, high))


@pytest.mark.parametrize(
    ("spec", "partition", "expected"),
    [
        (_spec((1, DayTransform()), (2, IdentityTransform())), [20_777, "like"],
         And(_between("event_time", "2026-11-20T00:00:00+00:00", "2026-11-21T00:00:00+00:00"),
             EqualTo("event_type", "like"))),
        (_spec((3, HourTransform())), [1], _between("local_time", "1970-01-01T01:00:00", "1970-01-01T02:00:00")),
        (_spec((4, MonthTransform())), [23], _between("day", "1971-12-01", "1972-01-01")),
        (_spec((2, IdentityTransform())), [None], IsNull("event_type")),
        (_spec((5, BucketTransform(16))), [3], AlwaysTrue()),  # not expressible: conflicts with any append
    ],
)
def test_partition_filter_matches_exactly_one_partition(spec, partition, expected) -> None:
    assert partition_filter(spec, SCHEMA, partition) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0s", timedelta(0)), ("45s", timedelta(seconds=45)), ("30m", timedelta(minutes=30)),
     ("1h", timedelta(hours=1)), ("2d", timedelta(days=2)), ("1h30m", timedelta(minutes=90)),
     (" 1H ", timedelta(hours=1)), ("2min", timedelta(minutes=2)), ("500ms", timedelta(milliseconds=500)),
     ("1m30s", timedelta(seconds=90))],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "1w", "1h and more", "-1h", "1mins", "1hm"])
def test_parse_duration_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("string", StringType()), ("long", LongType()), ("BIGINT", LongType()), ("timestamptz", TimestamptzType())],
)
def test_iceberg_type_from_avro_and_sql_names(name: str, expected) -> None:
    assert iceberg_type(name) == expected


def test_iceberg_type_lists_and_unknown_names() -> None:
    assert iceberg_type("array<string>") == ListType(element_id=1, element_type=StringType(), element_required=False)
    with pytest.raises(ValueError, match="unknown column type 'uuid'"):
        iceberg_type("uuid")


def test_docstring_examples_run() -> None:
    assert doctest.testmod(maintenance).failed == 0
    assert doctest.testmod(evolution).failed == 0
