"""The Iceberg history tables: their schemas, partitioning and sort order, created through pyiceberg.

Flink's Iceberg DDL cannot declare hidden partition transforms such as days(event_time), so the tables are
created here (tools environment) before the history job writes to them. Columns follow `udfs.envelope`.
"""

from __future__ import annotations

import contextlib

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import (
    BooleanType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    ListType,
    LongType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from fyp.config import Settings
from schemas.tables import (
    EMBEDDINGS_NAMESPACE,
    ENGAGEMENT_HISTORY,
    FOLLOWS_CHANGELOG,
    GRAPH_NAMESPACE,
    HISTORY_NAMESPACE,
    MODERATION_NAMESPACE,
    TAKEDOWNS,
    UPLOAD_EVENTS,
    VIDEO_EMBEDDINGS,
    VIDEOS_CHANGELOG,
)
from udfs.envelope import ENGAGEMENT_ROW_FIELDS
from udfs.takedown_audit import TAKEDOWN_AUDIT_FIELDS
from udfs.upload_events import RENDITION_FIELDS, RENDITIONS, UPLOAD_EVENT_ROW_FIELDS, VIDEO_ROW_FIELDS

# The table names live in schemas.tables (the jobs read them without pyiceberg); import them from there.
__all__ = [
    "catalog",
    "catch_up_columns",
    "create_engagement_history",
    "engagement_history_schema",
    "ensure_tables",
    "follows_changelog_schema",
    "takedowns_schema",
    "upload_events_schema",
    "video_embeddings_schema",
    "videos_changelog_schema",
]


_REQUIRED = {"event_type", "event_id", "event_time", "user_id", "video_id"}


def _iceberg_type(sql_type: str, next_id: list[int]) -> IcebergType:
    if sql_type.startswith("ARRAY<"):
        next_id[0] += 1
        return ListType(element_id=next_id[0], element_type=_iceberg_type(sql_type[6:-1], next_id),
                        element_required=False)
    return {"STRING": StringType(), "BIGINT": LongType(), "INT": IntegerType()}[sql_type]


def engagement_history_schema() -> Schema:
    """The engagement row (minus `error`) with event_time as timestamptz, plus the Kafka coordinates."""
    columns = [(n, t) for n, t in ENGAGEMENT_ROW_FIELDS if n != "error"]
    columns += [("kafka_partition", "INT"), ("kafka_offset", "BIGINT")]
    next_id = [len(columns)]
    fields = []
    for field_id, (name, sql_type) in enumerate(columns, start=1):
        iceberg_type = TimestamptzType() if name == "event_time" else _iceberg_type(sql_type, next_id)
        fields.append(NestedField(field_id, name, iceberg_type, required=name in _REQUIRED))
    return Schema(*fields, identifier_field_ids=[])


def catalog(settings: Settings) -> Catalog:
    return load_catalog("fyp", **settings.iceberg_catalog_properties())


def video_embeddings_schema() -> Schema:
    """Every VideoEmbedding record jobs/video_embeddings.py emitted: upserts with their vector, deletes with none.

    The latest row per (video_id, model) is the video's current state; training reads the item vectors here.
    """
    return Schema(
        NestedField(1, "video_id", StringType(), required=False),
        NestedField(2, "author_id", StringType(), required=False),
        NestedField(3, "model", StringType(), required=False),
        NestedField(4, "vector", ListType(element_id=7, element_type=FloatType(), element_required=False),
                    required=False),
        NestedField(5, "deleted", BooleanType(), required=False),
        NestedField(6, "event_time", TimestamptzType(), required=False),
    )


def _ensure_embeddings(cat: Catalog) -> list[str]:
    if cat.table_exists(VIDEO_EMBEDDINGS):
        return []
    with contextlib.suppress(NamespaceAlreadyExistsError):
        cat.create_namespace(EMBEDDINGS_NAMESPACE)
    schema = video_embeddings_schema()
    spec = PartitionSpec(PartitionField(schema.find_field("event_time").field_id, 1000, DayTransform(), "event_day"))
    try:
        cat.create_table(VIDEO_EMBEDDINGS, schema=schema, partition_spec=spec,
                         properties={"format-version": "2", "write.parquet.compression-codec": "zstd"})
    except TableAlreadyExistsError:
        return []
    return [VIDEO_EMBEDDINGS]


def ensure_tables(settings: Settings) -> list[str]:
    """Create the namespaces and tables that do not exist yet, and add to existing tables the optional columns
    their declaration gained since (a stack upgraded in place); return the created tables and added columns."""
    cat = catalog(settings)
    created = (_ensure_history(cat) + _ensure_embeddings(cat) + _ensure_uploads(cat) + _ensure_takedowns(cat)
               + _ensure_graph(cat))
    declared = {ENGAGEMENT_HISTORY: engagement_history_schema, VIDEO_EMBEDDINGS: video_embeddings_schema,
                UPLOAD_EVENTS: upload_events_schema, VIDEOS_CHANGELOG: videos_changelog_schema,
                TAKEDOWNS: takedowns_schema, FOLLOWS_CHANGELOG: follows_changelog_schema}
    added = [column for name, schema in declared.items() if name not in created
             for column in catch_up_columns(cat.load_table(name), schema())]
    return created + added


def catch_up_columns(table: Table, declared: Schema) -> list[str]:
    """Add the declared columns `table` lacks, each right after its declared predecessor: the Flink jobs
    insert by position, so the table must keep the declaration's column order. Old rows read them as null.

    Only optional columns can be added to a table with rows; a missing required one is a ValueError (it needs
    a new table, docs/ANALYSTS.md "Schema evolution")."""
    have = {f.name for f in table.schema().fields}
    missing = [(i, f) for i, f in enumerate(declared.fields) if f.name not in have]
    if not missing:
        return []
    if required := [f.name for _, f in missing if f.required]:
        raise ValueError(f"{'.'.join(table.name())}: required columns {required} cannot be added to an existing "
                         "table; create a new table version")
    with table.update_schema() as update:
        for i, f in missing:
            update.add_column(f.name, f.field_type, doc=f.doc, required=False)
            if i == 0:
                update.move_first(f.name)
            else:
                update.move_after(f.name, declared.fields[i - 1].name)
    return [f"{'.'.join(table.name())}.{f.name}" for _, f in missing]


class _Ids:
    """Field ids for a schema with nested types: top-level columns first (1..n), nested ids after them."""

    def __init__(self, top_level: int) -> None:
        self.last = top_level

    def next(self) -> int:
        self.last += 1
        return self.last


_SCALAR_TYPES = {"STRING": StringType, "BIGINT": LongType, "INT": IntegerType, "DOUBLE": DoubleType,
                 "TIMESTAMPTZ": TimestamptzType}


def _nested_type(sql_type: str, ids: _Ids) -> IcebergType:
    if sql_type == RENDITIONS:
        element = StructType(*(NestedField(ids.next(), n, _nested_type(t, ids), required=False)
                               for n, t in RENDITION_FIELDS))
        return ListType(element_id=ids.next(), element_type=element, element_required=False)
    if sql_type.startswith("ARRAY<"):
        return ListType(element_id=ids.next(), element_type=_nested_type(sql_type[6:-1], ids), element_required=False)
    return _SCALAR_TYPES[sql_type]()


def _schema(columns: list[tuple[str, str]], required: set[str]) -> Schema:
    ids = _Ids(len(columns))
    return Schema(*(NestedField(i, name, _nested_type(t, ids), required=name in required)
                    for i, (name, t) in enumerate(columns, start=1)))


def upload_events_schema() -> Schema:
    """Every record of the uploads and status topics (`udfs.upload_events`), event_time as timestamptz, plus
    the Kafka coordinates (topic, partition, offset: unique per landed record)."""
    columns = [(n, "TIMESTAMPTZ" if n == "event_time" else t) for n, t in UPLOAD_EVENT_ROW_FIELDS if n != "error"]
    columns += [("kafka_topic", "STRING"), ("kafka_partition", "INT"), ("kafka_offset", "BIGINT")]
    return _schema(columns, {"event_type", "event_id", "event_time", "video_id"})


def videos_changelog_schema() -> Schema:
    """One row per accepted change of a video (`udfs.upload_events.video_row`), times as timestamptz."""
    renamed = {"created_ms": ("created_at", "TIMESTAMPTZ"), "updated_ms": ("updated_at", "TIMESTAMPTZ")}
    columns = [renamed.get(n, (n, t)) for n, t in VIDEO_ROW_FIELDS]
    return _schema(columns, {"video_id", "seq", "status"})


def _ensure_uploads(cat: Catalog) -> list[str]:
    created = []
    with contextlib.suppress(NamespaceAlreadyExistsError):
        cat.create_namespace(HISTORY_NAMESPACE)
    properties = {"format-version": "2", "write.parquet.compression-codec": "zstd"}
    if not cat.table_exists(UPLOAD_EVENTS):
        schema = upload_events_schema()
        spec = PartitionSpec(
            PartitionField(schema.find_field("event_time").field_id, 1000, DayTransform(), "event_day"),
            PartitionField(schema.find_field("event_type").field_id, 1001, IdentityTransform(), "event_type"),
        )
        # A video's lifecycle is read in one go: sort by video, then time.
        order = SortOrder(SortField(schema.find_field("video_id").field_id, IdentityTransform()),
                          SortField(schema.find_field("event_time").field_id, IdentityTransform()))
        with contextlib.suppress(TableAlreadyExistsError):
            cat.create_table(UPLOAD_EVENTS, schema=schema, partition_spec=spec, sort_order=order,
                             properties=properties)
            created.append(UPLOAD_EVENTS)
    if not cat.table_exists(VIDEOS_CHANGELOG):
        schema = videos_changelog_schema()
        # Unpartitioned: a few rows per video, and the latest-row view reads the whole table anyway.
        order = SortOrder(SortField(schema.find_field("video_id").field_id, IdentityTransform()))
        with contextlib.suppress(TableAlreadyExistsError):
            cat.create_table(VIDEOS_CHANGELOG, schema=schema, sort_order=order, properties=properties)
            created.append(VIDEOS_CHANGELOG)
    return created


def _ensure_history(cat: Catalog) -> list[str]:
    if cat.table_exists(ENGAGEMENT_HISTORY):
        return []
    with contextlib.suppress(NamespaceAlreadyExistsError):
        cat.create_namespace(HISTORY_NAMESPACE)
    try:
        create_engagement_history(cat, ENGAGEMENT_HISTORY)
    except TableAlreadyExistsError:  # created concurrently
        return []
    return [ENGAGEMENT_HISTORY]


def create_engagement_history(cat: Catalog, identifier: str) -> Table:
    """A table laid out as the engagement history: its schema, day x event_type partitions, sort order and
    properties (also what `fyp bench experiment-report` builds its generated history in)."""
    schema = engagement_history_schema()
    event_time, event_type = schema.find_field("event_time"), schema.find_field("event_type")
    spec = PartitionSpec(
        PartitionField(event_time.field_id, 1000, DayTransform(), "event_day"),
        PartitionField(event_type.field_id, 1001, IdentityTransform(), "event_type"),
    )
    # Analysts filter by user or by video within a day: sort data files by both.
    order = SortOrder(SortField(schema.find_field("user_id").field_id, IdentityTransform()),
                      SortField(schema.find_field("video_id").field_id, IdentityTransform()))
    return cat.create_table(identifier, schema=schema, partition_spec=spec, sort_order=order,
                            properties={"format-version": "2", "write.parquet.compression-codec": "zstd"})


def takedowns_schema() -> Schema:
    """The takedown audit (`fyp.uploads.takedowns.TakedownAudit`): one row per filed takedown or restore, with
    who filed it, the notice, when, and the published keys that call moved (`fyp.media.takedown`)."""
    return _schema(list(TAKEDOWN_AUDIT_FIELDS), {"event_id", "action", "video_id", "notice_id", "filed_at"})


def _ensure_takedowns(cat: Catalog) -> list[str]:
    if cat.table_exists(TAKEDOWNS):
        return []
    with contextlib.suppress(NamespaceAlreadyExistsError):
        cat.create_namespace(MODERATION_NAMESPACE)
    # Unpartitioned and unsorted: a few rows a day, read whole by whoever answers a legal enquiry.
    with contextlib.suppress(TableAlreadyExistsError):
        cat.create_table(TAKEDOWNS, schema=takedowns_schema(),
                         properties={"format-version": "2", "write.parquet.compression-codec": "zstd"})
        return [TAKEDOWNS]
    return []


def follows_changelog_schema() -> Schema:
    """Every follow event jobs/follow_graph.py read (udfs/follow_graph.changelog_query): who, whom, op '+' (follow)
    or '-' (unfollow), when, and the event's id and Kafka coordinates. `graph.follows` (fyp/lake/sql.py) is the
    latest row per (user_id, author_id) whose op is '+': the current edges."""
    return _schema([("user_id", "STRING"), ("author_id", "STRING"), ("op", "STRING"), ("event_time", "TIMESTAMPTZ"),
                    ("event_id", "STRING"), ("kafka_partition", "INT"), ("kafka_offset", "BIGINT")], set())


def _ensure_graph(cat: Catalog) -> list[str]:
    if cat.table_exists(FOLLOWS_CHANGELOG):
        return []
    with contextlib.suppress(NamespaceAlreadyExistsError):
        cat.create_namespace(GRAPH_NAMESPACE)
    schema = follows_changelog_schema()
    # Unpartitioned: a few rows per edge, and the current-edges view reads the whole table anyway; sorted by the
    # pair so that one user's edges sit together.
    order = SortOrder(SortField(schema.find_field("user_id").field_id, IdentityTransform()),
                      SortField(schema.find_field("author_id").field_id, IdentityTransform()))
    with contextlib.suppress(TableAlreadyExistsError):
        cat.create_table(FOLLOWS_CHANGELOG, schema=schema, sort_order=order,
                         properties={"format-version": "2", "write.parquet.compression-codec": "zstd"})
        return [FOLLOWS_CHANGELOG]
    return []
