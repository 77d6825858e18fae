"""PyFlink wrappers around the pure functions in `udfs/`, with their Flink result types.

Only this module imports PyFlink; it runs in the Flink environment (.venv-flink). The logic stays in the pure
modules, which the tools environment tests without a cluster.
"""

from __future__ import annotations

import time

from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.types import DataType
from pyflink.table.udf import udf

from udfs.dead_letter import dead_letter_payload
from udfs.envelope import ENGAGEMENT_ROW_FIELDS, to_engagement_row

__all__ = ["ENGAGEMENT_ROW_TYPE", "decode_engagement", "encode_dead_letter", "flink_type"]

_SCALARS: dict[str, DataType] = {
    "STRING": DataTypes.STRING(), "BIGINT": DataTypes.BIGINT(), "INT": DataTypes.INT(),
    "DOUBLE": DataTypes.DOUBLE(), "BOOLEAN": DataTypes.BOOLEAN(), "BYTES": DataTypes.BYTES(),
}


def flink_type(sql_type: str) -> DataType:
    """The PyFlink DataType of a SQL type name used in `udfs` field lists (scalars and ARRAY<...>)."""
    if sql_type.startswith("ARRAY<") and sql_type.endswith(">"):
        return DataTypes.ARRAY(flink_type(sql_type[6:-1]))
    return _SCALARS[sql_type]


_HASHTAGS = [name for name, _ in ENGAGEMENT_ROW_FIELDS].index("hashtags")
ENGAGEMENT_ROW_TYPE = DataTypes.ROW([DataTypes.FIELD(name, flink_type(t)) for name, t in ENGAGEMENT_ROW_FIELDS])


@udf(result_type=ENGAGEMENT_ROW_TYPE)
def decode_engagement(payload: bytes):
    """Raw Kafka value -> engagement row (error column set instead of raising)."""
    values = to_engagement_row(payload, int(time.time() * 1000))
    if values[_HASHTAGS] is None:
        # Thread mode's converter cannot turn a null ARRAY into Java (TypeError in to_external).
        values = (*values[:_HASHTAGS], [], *values[_HASHTAGS + 1:])
    return Row(*values)


@udf(result_type=DataTypes.BYTES())
def encode_dead_letter(topic: str, partition: int, offset: int, reason: str, payload: bytes) -> bytes:
    return dead_letter_payload(topic, partition, offset, reason, payload)
