"""Schema evolution of the Iceberg tables: add an optional column when an Avro event schema gains a field.

The procedure (docs/ANALYSTS.md, "Schema evolution"): add the field with a default to the .avsc (a backward
compatible change, docs/EVENTS.md), add the column here, then redeploy the Flink job with the new column list.
Rows written before read the new column as null; Iceberg never rewrites old files for this.
"""

from __future__ import annotations

import re

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    ListType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
)

__all__ = ["add_optional_column", "iceberg_type"]

_PRIMITIVES: dict[str, IcebergType] = {
    "string": StringType(), "long": LongType(), "bigint": LongType(), "int": IntegerType(),
    "integer": IntegerType(), "boolean": BooleanType(), "double": DoubleType(), "float": FloatType(),
    "date": DateType(), "timestamp": TimestampType(), "timestamptz": TimestamptzType(), "bytes": BinaryType(),
    "binary": BinaryType(),
}


def iceberg_type(name: str) -> IcebergType:
    """An Iceberg type from its name or the Avro one: string, long, int, boolean, double, float, date,
    timestamp, timestamptz, bytes, or list<...> of those (element ids are assigned when the column is added).

    >>> iceberg_type("list<string>")
    ListType(type='list', element_id=1, element_type=StringType(), element_required=False)
    """
    text = name.strip().lower()
    if match := re.fullmatch(r"(?:list|array)<(.+)>", text):
        return ListType(element_id=1, element_type=iceberg_type(match.group(1)), element_required=False)
    if text not in _PRIMITIVES:
        raise ValueError(f"unknown column type {name!r}; one of {', '.join(sorted(_PRIMITIVES))} or list<...>")
    return _PRIMITIVES[text]


def add_optional_column(table: Table, name: str, field_type: IcebergType | str, *, doc: str | None = None,
                        after: str | None = None, attempts: int = 3) -> bool:
    """Add the optional top-level column `name` to `table`; False if it is already there with that type.

    `after` places it after that column (default: last). The history table follows the engagement row's order
    and ends with kafka_partition, kafka_offset: add a row field after the row's last column, `arms`
    since Impression v2, so the table keeps the order of the Flink job's SELECT.
    Raises ValueError if a column of that name exists with another type. A commit that races another schema
    change is retried (`attempts` times): data commits from the Flink job never conflict with it.

    Example: ``add_optional_column(history, "watch_quality", "string", after="arms")``
    """
    wanted = iceberg_type(field_type) if isinstance(field_type, str) else field_type
    for attempt in range(attempts):
        table.refresh()
        existing = {f.name: f for f in table.schema().fields}
        if name in existing:
            found = existing[name].field_type
            if found == wanted or (isinstance(found, ListType) and isinstance(wanted, ListType)
                                   and found.element_type == wanted.element_type):
                return False
            raise ValueError(f"{name} already exists as {found}, not {wanted}: pick another name")
        try:
            with table.update_schema() as update:
                update.add_column(name, wanted, doc=doc, required=False)
                if after is not None:
                    update.move_after(name, after)
            return True
        except CommitFailedException:
            if attempt == attempts - 1:
                raise
    return False
