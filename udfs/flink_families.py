"""Wire a key family into a PyFlink job: its input rows from SQL, through the Java `FamilyOperator`
(udfs/java/aggregates, `dev.fyp.flink.families`) as a DataStream step, and back to SQL as a view that
`featurespec.families.family_output_query` splits per set. The SQL and the operator's spec come from the job,
which compiles them from the declarations (`featurespec.families`): udfs does not import featurespec.

Rows cross the Table/DataStream boundary both ways as Flink's internal `RowData`, with no conversion to
external rows (`Families.toRowDataChangelog`: a changelog, so that the operator also takes a table the planner
types as updating, such as SQL's keep-first deduplication under mini-batch, and subtracts a withdrawn row as the
SQL path's aggregate would; the features job's deduplication, `keep_first_view`, is insert-only). No Python runs
per event."""

from __future__ import annotations

from pyflink.java_gateway import get_gateway
from pyflink.table import StreamTableEnvironment, Table

__all__ = ["BUNDLE_MS", "MAX_BUNDLE", "family_view", "keep_first_view", "shared_view"]

# As the SQL path's mini-batch (jobs/engagement_features.py JOB_CONFIG): a bundle closes after this many rows,
# `bundle_ms` after its first row, before every checkpoint, and at a mini-batch boundary (a watermark) where one
# comes. The features job's deduplication (keep_first_view) needs no mini-batch; whether a boundary still reaches
# the family operators there was not checked (docs/PERFORMANCE.md, "fourth session"), and without one the timer
# ends their bundles.
MAX_BUNDLE = 5000
BUNDLE_MS = 200


def family_view(t_env: StreamTableEnvironment, name: str, input_sql: str, spec: str, *,
                bundle_ms: int = BUNDLE_MS) -> str:
    """Register a family operator's output as temporary view `name` (`set_index, k, subkey, event_time,
    vals`), fed by the rows of `input_sql` (`family_input_query`) and configured by `spec` (`family_spec`);
    returns the view's name. bundle_ms: the job's mini-batch interval (a bundle's bound when no boundary comes)."""
    gateway = get_gateway()
    j_tenv = t_env._j_tenv
    families_java = gateway.jvm.dev.fyp.flink.families.Families
    stream = families_java.toRowDataChangelog(j_tenv, t_env.sql_query(input_sql)._j_table)
    out = families_java.apply(stream, name, spec, MAX_BUNDLE, bundle_ms, True)
    t_env.create_temporary_view(name, Table(j_tenv.fromDataStream(out), t_env))
    return name


def shared_view(t_env: StreamTableEnvironment, name: str, table: Table, *, proc_time: str | None = None,
                changelog: bool = False) -> None:
    """Register `table` as view `name` over a DataStream of its rows (`Families.share`), so that the family
    conversions and the job's INSERTs read one computation of it instead of each re-planning it from the Kafka
    source. proc_time: its processing-time column, kept a time attribute. changelog: the table is typed as
    updating but only inserts (the keep-first deduplication under mini-batch); anything else fails the job."""
    families_java = get_gateway().jvm.dev.fyp.flink.families.Families
    shared = families_java.share(t_env._j_tenv, table._j_table, proc_time, changelog, name)
    t_env.create_temporary_view(name, Table(shared, t_env))


def keep_first_view(t_env: StreamTableEnvironment, name: str, table: Table, *, key: str, ttl_ms: int) -> None:
    """Register `table` (insert-only) deduplicated on its string column `key` as view `name`: the first row of each
    key passes, a repeat within `ttl_ms` of processing time does not (the Java `KeepFirst`, uid `name`). Unlike
    the SQL keep-first deduplication under mini-batch, each row leaves as it arrives, so the family operators
    downstream see each Kafka partition's events, per deduplication subtask, in offset order (issue #17)."""
    columns = table.get_schema().get_field_names()
    if key not in columns:
        raise ValueError(f"{name}: no column {key!r} to deduplicate on (columns: {', '.join(columns)})")
    families_java = get_gateway().jvm.dev.fyp.flink.families.Families
    kept = families_java.keepFirst(t_env._j_tenv, table._j_table, columns.index(key), ttl_ms, name)
    t_env.create_temporary_view(name, Table(kept, t_env))
