"""The Iceberg table `training.<name>`: its columns, day partitioning and properties, and the idempotent write.

Columns, in order: the spine (event_id, event_time timestamptz, user_id, video_id, author_id, sound_id, region,
language, hashtags), one boolean `label_<name>` per label, one nullable float32 per feature
(`feature_column(set, name)` for every name serving's decode returns: the set's columns, then its ratios) and one
list<string> per history (named as the history). Properties: `fyp.training_set` (the qualified name) and
`fyp.training_set.fingerprint` (a hash of the declaration's repr, so a changed declaration is visible).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from hashlib import sha256

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, GreaterThanOrEqual, LessThan
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform
from pyiceberg.types import BooleanType, FloatType, ListType, NestedField, StringType, TimestamptzType

from featurespec.training import TrainingSet, feature_column
from fyp.serving.layout import ReadPlan, read_columns

__all__ = ["FINGERPRINT_PROPERTY", "NAME_PROPERTY", "SPINE_COLUMNS", "DeclarationChanged", "days_filter",
           "ensure_table", "feature_columns", "fingerprint", "iceberg_schema", "write_days"]

NAMESPACE = "training"
NAME_PROPERTY = "fyp.training_set"
FINGERPRINT_PROPERTY = "fyp.training_set.fingerprint"
SPINE_COLUMNS = ("event_id", "event_time", "user_id", "video_id", "author_id", "sound_id", "region", "language",
                 "hashtags")


class DeclarationChanged(ValueError):
    """The table was built from another declaration than the one now in the code."""


def fingerprint(training_set: TrainingSet) -> str:
    """A hash of the declaration's repr: any change to the spine, a label or a joined set changes it."""
    return sha256(repr(training_set).encode()).hexdigest()[:16]


def feature_columns(training_set: TrainingSet) -> list[tuple[str, list[str]]]:
    """Per joined feature set, (set name, its table columns) in table order."""
    return [(fs.name, [feature_column(fs, c) for c in read_columns(ReadPlan.of(fs))])
            for fs in training_set.feature_sets]


def iceberg_schema(training_set: TrainingSet) -> Schema:
    names = [*SPINE_COLUMNS, *(label.column for label in training_set.labels),
             *(c for _, columns in feature_columns(training_set) for c in columns),
             *(h.name for h in training_set.histories)]
    if len(set(names)) != len(names):
        raise ValueError(f"{training_set.qualified_name}: two columns share a name")
    labels = {label.column for label in training_set.labels}
    histories = {h.name for h in training_set.histories}
    next_id = len(names)
    fields = []
    for field_id, name in enumerate(names, start=1):
        if name in ("hashtags", *histories):
            next_id += 1
            kind = ListType(element_id=next_id, element_type=StringType(), element_required=False)
        elif name == "event_time":
            kind = TimestamptzType()
        elif name in labels:
            kind = BooleanType()
        elif name in SPINE_COLUMNS:
            kind = StringType()
        else:
            kind = FloatType()
        fields.append(NestedField(field_id, name, kind, required=name in ("event_id", "event_time")))
    return Schema(*fields)


def _properties(training_set: TrainingSet) -> dict[str, str]:
    return {NAME_PROPERTY: training_set.qualified_name, FINGERPRINT_PROPERTY: fingerprint(training_set)}


def ensure_table(catalog: Catalog, training_set: TrainingSet, *, replace: bool = False) -> Table:
    """The training table, created if missing (partitioned by day(event_time)). A table built from another
    declaration raises DeclarationChanged, unless `replace`, which drops it and starts again."""
    with contextlib.suppress(NamespaceAlreadyExistsError):
        catalog.create_namespace(NAMESPACE)
    try:
        table = catalog.load_table(training_set.table)
    except NoSuchTableError:
        table = None
    if table is not None:
        found = table.properties.get(FINGERPRINT_PROPERTY)
        if found == fingerprint(training_set) and not replace:
            return table
        if not replace:
            raise DeclarationChanged(
                f"{training_set.table} was built from {table.properties.get(NAME_PROPERTY)} with fingerprint "
                f"{found}, the declaration now has {fingerprint(training_set)}: rebuild it with --replace")
        catalog.drop_table(training_set.table)
    schema = iceberg_schema(training_set)
    spec = PartitionSpec(PartitionField(schema.find_field("event_time").field_id, 1000, DayTransform(), "event_day"))
    return catalog.create_table(training_set.table, schema=schema, partition_spec=spec, properties={
        "format-version": "2", "write.parquet.compression-codec": "zstd", **_properties(training_set)})


def _day_start(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def days_filter(since: date | None, until: date | None) -> BooleanExpression:
    """A scan filter for the UTC days [since, until] (inclusive; None: unbounded) of a training table, which is
    partitioned by day(event_time), so whole partitions are pruned; `ValueError` if until is before since."""
    if since and until and until < since:
        raise ValueError(f"--until {until} is before --since {since}")
    row_filter: BooleanExpression = AlwaysTrue()
    if since:
        row_filter = And(row_filter, GreaterThanOrEqual("event_time", _day_start(since)))
    if until:
        row_filter = And(row_filter, LessThan("event_time", _day_start(until + timedelta(days=1))))
    return row_filter


def write_days(table: Table, rows: pa.Table, first_day: date, last_day: date, *,
               provenance: dict[str, str] | None = None) -> None:
    """Replace the days [first_day, last_day] (UTC) of `table` with `rows` in one commit: a rebuild of the same
    days replaces them, never adds to them (the filter is on whole days, the partitions, so the old files are
    dropped whole). provenance: added to the snapshot's summary (e.g. the history snapshot read)."""
    window = And(GreaterThanOrEqual("event_time", _day_start(first_day)),
                 LessThan("event_time", _day_start(last_day + timedelta(days=1))))
    table.overwrite(rows.cast(table.schema().as_arrow()), overwrite_filter=window,
                    snapshot_properties=provenance or {})
