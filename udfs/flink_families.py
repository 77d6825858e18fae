"""Wire a key family (featurespec/families.py) into a PyFlink job: its input rows from SQL, through the Java
`FamilyOperator` (udfs/java/aggregates, `dev.fyp.flink.families`) as a DataStream step, and back to SQL as a
view that `family_output_query` splits per set.

The input crosses into the DataStream API as a changelog of external rows: under mini-batch the planner types
the keep-first deduplication's output as updating, which `toDataStream` refuses (the operator subtracts a
withdrawn row, as the SQL path's aggregate would). The output comes back as Flink's internal `RowData`, with no
conversion. No Python runs per event."""

from __future__ import annotations

from pyflink.java_gateway import get_gateway
from pyflink.table import StreamTableEnvironment, Table

from featurespec.families import Family, family_input_query, family_spec

__all__ = ["BUNDLE_MS", "MAX_BUNDLE", "family_view"]

# As the SQL path's mini-batch (jobs/engagement_features.py JOB_CONFIG): a bundle closes after this many rows
# or this long after its first row, whichever comes first; and before every checkpoint.
MAX_BUNDLE = 5000
BUNDLE_MS = 200


def family_view(t_env: StreamTableEnvironment, family: Family, source: str = "engagement") -> str:
    """Register the family operator's output as a temporary view (`set_index, k, subkey, event_time, vals`),
    fed from `source`; returns the view's name."""
    gateway = get_gateway()
    j_tenv = t_env._j_tenv
    stream = j_tenv.toChangelogStream(t_env.sql_query(family_input_query(family, source))._j_table)
    name = f"family_{family.name}"
    out = gateway.jvm.dev.fyp.flink.families.Families.apply(stream, name, family_spec(family), MAX_BUNDLE, BUNDLE_MS)
    t_env.create_temporary_view(name, Table(j_tenv.fromDataStream(out), t_env))
    return name
