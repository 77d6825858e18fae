"""Compile a `FeatureSet` into the Flink SQL query that computes it from the engagement view.

The query is a non-windowed GROUP BY over the entity's keys. Windows are Java aggregate functions
(udfs/java/aggregates: SLIDING_SUM, DECAYED_SUM), so no Python runs per event, and every output row holds
absolute values from Flink state, as the Redis sink requires.
"""

from __future__ import annotations

from datetime import timedelta

from udfs.featurespec import FeatureSet, SortedSetSpec, window_label

__all__ = ["JAVA_AGGREGATES", "feature_query", "sink_columns", "sorted_set_query"]

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


def feature_query(feature_set: FeatureSet, source: str = "engagement", state_ttl: timedelta | None = None) -> str:
    """The SELECT computing `feature_set` from `source` (a view of engagement rows, event_time in ms).

    state_ttl: how long an idle entity's state is kept (default: the longest window plus one hour); set as
    a STATE_TTL hint, so the job-wide TTL can stay short for deduplication.
    """
    entity = feature_set.entity
    keys = [f"`{k}`" for k in entity.key_columns]
    relation = f"`{source}`"
    if entity.explodes_hashtags:
        relation = f"(SELECT * FROM `{source}` CROSS JOIN UNNEST(`hashtags`) AS exploded(`hashtag`))"
    ttl = state_ttl or (max([*feature_set.windows, *feature_set.half_lives]) + timedelta(hours=1))
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
    hint = f"/*+ STATE_TTL('src' = '{int(ttl.total_seconds())}s') */"
    return (f"SELECT {hint}\n  {select}\nFROM {relation} AS src\nWHERE {' AND '.join(conditions)}\n"
            f"GROUP BY {', '.join(keys)}")


def sorted_set_query(spec: SortedSetSpec, source: str = "engagement") -> str:
    """The SELECT feeding a serving sorted set: one (key..., member, score) row per group."""
    groups = [f"`{c}`" for c in (*spec.key_columns, spec.member_column)]
    not_empty = " AND ".join(f"{g} IS NOT NULL AND {g} <> ''" for g in groups)
    hint = f"/*+ STATE_TTL('src' = '{int(spec.state_ttl.total_seconds())}s') */"
    return (f"SELECT {hint} {', '.join(groups)}, CAST({spec.score} AS DOUBLE) AS `score`\n"
            f"FROM `{source}` AS src\nWHERE ({spec.where}) AND {not_empty}\nGROUP BY {', '.join(groups)}")
