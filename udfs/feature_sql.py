"""Compile a `FeatureSet` into the Flink SQL query that computes it from the engagement view.

The query is a non-windowed GROUP BY over the entity's keys. Windows are Java aggregate functions
(udfs/java/aggregates: SLIDING_SUM, DECAYED_SUM), so no Python runs per event, and every output row holds
absolute values from Flink state, as the Redis sink requires.
"""

from __future__ import annotations

from udfs.featurespec import FeatureSet, window_label

__all__ = ["JAVA_AGGREGATES", "feature_query", "sink_columns"]

# SQL name -> Java class; jobs register them with CREATE TEMPORARY SYSTEM FUNCTION.
JAVA_AGGREGATES = {
    "SLIDING_SUM": "dev.fyp.flink.aggregates.SlidingSum",
    "DECAYED_SUM": "dev.fyp.flink.aggregates.DecayedSum",
}


def _ms(delta) -> int:
    return int(delta.total_seconds() * 1000)


def sink_columns(feature_set: FeatureSet) -> list[tuple[str, str]]:
    """(name, SQL type) of the rows the query emits: keys, event_time, then the value columns."""
    keys = [(k, "STRING") for k in feature_set.entity.key_columns]
    return [*keys, ("event_time", "BIGINT"), *((c, "DOUBLE") for c in feature_set.columns())]


def feature_query(feature_set: FeatureSet, source: str = "engagement") -> str:
    """The SELECT computing `feature_set` from `source` (a view of engagement rows, event_time in ms)."""
    entity = feature_set.entity
    keys = [f"`{k}`" for k in entity.key_columns]
    relation = f"`{source}`"
    if entity.explodes_hashtags:
        relation += " CROSS JOIN UNNEST(`hashtags`) AS exploded(`hashtag`)"
    conditions = [f"{k} IS NOT NULL AND {k} <> ''" for k in keys]
    if feature_set.where:
        conditions.append(f"({feature_set.where})")
    values = []
    for aggregation in feature_set.aggregations:
        value = aggregation.value_sql()
        for window in feature_set.windows:
            values.append(f"SLIDING_SUM({value}, `event_time`, {_ms(window)}, {feature_set.tiles}) "
                          f"AS `{aggregation.name}_{window_label(window)}`")
    for aggregation in feature_set.aggregations:
        value = aggregation.value_sql()
        for half_life in feature_set.half_lives:
            values.append(f"DECAYED_SUM({value}, `event_time`, {_ms(half_life)}) "
                          f"AS `{aggregation.name}_decay_{window_label(half_life)}`")
    select = ",\n  ".join([*keys, "MAX(`event_time`) AS `event_time`", *values])
    return (f"SELECT\n  {select}\nFROM {relation}\nWHERE {' AND '.join(conditions)}\n"
            f"GROUP BY {', '.join(keys)}")
