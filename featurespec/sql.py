"""Compile a `FeatureSet` into the Flink SQL query that computes it from the engagement view.

The query is a non-windowed GROUP BY over the entity's keys. All windows and decays of a feature set are one
Java aggregate call, FEATURE_VECTOR (udfs/java/aggregates, docs/AGGREGATES.md), so no Python runs per event and
an event updates one accumulator per feature set; an outer SELECT flattens its array into the value columns.
Every output row holds absolute values from Flink state, as the Redis sink requires.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from featurespec.declaration import Aggregation, Entity, FeatureSet, SortedSetSpec, double_literals
from udfs.envelope import ENGAGEMENT_COLUMNS
from udfs.guard import failure_function

__all__ = [
    "COUNTER_NAMES",
    "JAVA_AGGREGATES",
    "counters_query",
    "default_state_ttl",
    "derived_sources",
    "feature_query",
    "read_columns",
    "sink_columns",
    "sorted_set_query",
    "source_columns",
    "vector_function",
    "vector_spec",
]

# SQL name -> Java class; jobs register them with CREATE TEMPORARY SYSTEM FUNCTION.
JAVA_AGGREGATES = {
    "FEATURE_VECTOR": "dev.fyp.flink.aggregates.FeatureVector",
    "FEATURE_VECTOR_ONE_PHASE": "dev.fyp.flink.aggregates.FeatureVectorOnePhase",
    "SLIDING_SUM": "dev.fyp.flink.aggregates.SlidingSum",
    "DECAYED_SUM": "dev.fyp.flink.aggregates.DecayedSum",
}


def _ms(delta) -> int:
    return int(delta.total_seconds() * 1000)


def sink_columns(feature_set: FeatureSet) -> list[tuple[str, str]]:
    """(name, SQL type) of the rows the query emits: keys, event_time, then the value columns."""
    keys = [(k, "STRING") for k in feature_set.entity.key_columns]
    return [*keys, ("event_time", "BIGINT"), *((c, "DOUBLE") for c in feature_set.columns())]


def vector_spec(feature_set: FeatureSet) -> str:
    """FEATURE_VECTOR's spec: `window_ms/tiles,...;half_life_ms,...` (either list may be empty)."""
    windows = ",".join(f"{_ms(w)}/{feature_set.tiles}" for w in feature_set.windows)
    return f"{windows};{','.join(str(_ms(h)) for h in feature_set.half_lives)}"


def vector_function(entity: Entity) -> str:
    """FEATURE_VECTOR (with merge: pre-aggregated per mini-batch, two-phase) for an entity with few keys;
    FEATURE_VECTOR_ONE_PHASE (no merge: aggregated once, after the shuffle) for the others."""
    return "FEATURE_VECTOR" if entity.few_keys else "FEATURE_VECTOR_ONE_PHASE"


def default_state_ttl(feature_set: FeatureSet) -> timedelta:
    """How long the job keeps an idle entity's aggregate state: the longest window or half-life plus one hour."""
    return max([*feature_set.windows, *feature_set.half_lives]) + timedelta(hours=1)


_QUOTED = re.compile(r"'(?:[^']|'')*'")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _engagement_columns_in(sql_texts: Iterable[str | None]) -> set[str]:
    """The engagement-row columns named in some SQL texts (a word inside a quoted literal is not a column)."""
    words = {w for sql in sql_texts if sql for w in _WORD.findall(_QUOTED.sub("''", sql))}
    return words & set(ENGAGEMENT_COLUMNS)


def _in_row_order(columns: set[str]) -> tuple[str, ...]:
    return tuple(c for c in ENGAGEMENT_COLUMNS if c in columns)


def read_columns(feature_set: FeatureSet) -> tuple[str, ...]:
    """The engagement-row columns `feature_query(feature_set)` reads, in row order."""
    texts = [*feature_set.entity.key_columns, "event_time", feature_set.where, feature_set.counted_where,
             *(d.sql for d in feature_set.derived), *(a.value_sql() for a in feature_set.aggregations)]
    if feature_set.entity.explodes_hashtags:
        texts.append("hashtags")
    return _in_row_order(_engagement_columns_in(texts))


def source_columns(feature_sets: Iterable[FeatureSet], sorted_sets: Iterable[SortedSetSpec] = ()) -> tuple[str, ...]:
    """The engagement-row columns that any of these sets reads, plus `event_id` (the deduplication key): what
    the job's `engagement` view keeps. Flink does not prune a column through the shared deduplication (a view
    that several sinks read keeps all its columns), so the view itself leaves out the ones nothing reads."""
    columns = {"event_id"}
    for feature_set in feature_sets:
        columns.update(read_columns(feature_set))
    for spec in sorted_sets:
        columns |= _engagement_columns_in([*spec.key_columns, spec.member_column, spec.score, spec.where,
                                           *(d.sql for d in spec.derived)])
    return _in_row_order(columns)


def feature_query(feature_set: FeatureSet, source: str = "engagement", state_ttl: timedelta | None = None) -> str:
    """The SELECT computing `feature_set` from `source` (a view of engagement rows, event_time in ms).

    An inner GROUP BY computes one FEATURE_VECTOR per key (its elements in `feature_set.columns()` order) and
    an outer SELECT flattens it, so the rows have exactly the columns of `sink_columns(feature_set)`.

    state_ttl: how long an idle entity's state is kept (default: the longest window plus one hour); set as
    a STATE_TTL hint, so the job-wide TTL can stay short for deduplication.
    """
    entity = feature_set.entity
    keys = [f"`{k}`" for k in entity.key_columns]
    relation = f"`{source}`"
    if feature_set.derived:
        # A NULL derived value means its guarded function failed on this row (udfs/guard.py): the row is a dead
        # letter (`derived_failure_checks`), so no aggregation of the set counts it.
        # The planner merges `where` and this NULL check into one condition and, since that condition calls the
        # (Python) function, computes the function ahead of the whole of it: on every row of `source`. Only a
        # `source` already filtered to this set's rows keeps it to those (`derived_sources`, as the job does).
        derived = ", ".join(f"{d.sql} AS `{d.name}`" for d in feature_set.derived)
        present = " AND ".join(f"`{d.name}` IS NOT NULL" for d in feature_set.derived)
        relation = (f"(SELECT * FROM (SELECT *, {derived} FROM `{source}` WHERE {feature_set.where}) "
                    f"WHERE {present})")
    if entity.explodes_hashtags:
        # Only the columns the set reads go through the explode, which copies them once per hashtag.
        kept = ", ".join(f"`{c}`" for c in (*read_columns(feature_set), *(d.name for d in feature_set.derived))
                         if c != "hashtags")
        relation = (f"(SELECT {kept}, `hashtag` FROM (SELECT {kept}, `hashtags` FROM {relation}) AS narrowed "
                    "CROSS JOIN UNNEST(`hashtags`) AS exploded(`hashtag`))")
    ttl = state_ttl or default_state_ttl(feature_set)
    conditions = [f"{k} IS NOT NULL AND {k} <> ''" for k in keys]
    if feature_set.where:
        conditions.append(f"({feature_set.where})")
    if feature_set.counted_where:
        conditions.append(f"({feature_set.counted_where})")
    # The CAST keeps the array ARRAY<DOUBLE> whatever a declared expression's type.
    values = ",\n    ".join(f"CAST({a.value_sql()} AS DOUBLE)" for a in feature_set.aggregations)
    function = vector_function(entity)
    vector = f"{function}(ARRAY[\n    {values}],\n    `event_time`, '{vector_spec(feature_set)}') AS `fv`"
    select = ",\n  ".join([*keys, "MAX(`event_time`) AS `event_time`", vector])
    hint = f"/*+ STATE_TTL('src' = '{int(ttl.total_seconds())}s') */"
    inner = (f"SELECT {hint}\n  {select}\nFROM {relation} AS src\nWHERE {' AND '.join(conditions)}\n"
             f"GROUP BY {', '.join(keys)}")
    # Flink arrays are 1-based.
    flat = [f"`fv`[{i}] AS `{column}`" for i, column in enumerate(feature_set.columns(), start=1)]
    outer = ",\n  ".join([*keys, "`event_time`", *flat])
    # DOUBLE literals throughout: no per-row DECIMAL arithmetic (`double_literals`).
    return double_literals(f"SELECT\n  {outer}\nFROM (\n{inner}\n) AS `vectors`")


def derived_sources(feature_sets: Iterable[FeatureSet],
                    source: str = "engagement") -> list[tuple[str, str, tuple[str, ...]]]:
    """(view name, SELECT, qualified names of the sets that read it) per distinct `where` of the sets with derived
    columns: `source`'s rows that pass it. A job registers each SELECT as a view behind a boundary the planner
    cannot see through (`udfs.flink_families.shared_view`) and passes the view to `feature_query`, so a derived
    column's function runs on the set's rows only (see `feature_query`; tests/flink/test_comment_sentiment.py).

    >>> from features.comments import author_comment_sentiment, video_comment_sentiment
    >>> [(view, select, readers)] = derived_sources([video_comment_sentiment.v1, author_comment_sentiment.v1])
    >>> view, select
    ('derived_engagement_0', "SELECT * FROM `engagement` WHERE event_type = 'comment'")
    >>> readers
    ('video_comment_sentiment.v1', 'author_comment_sentiment.v1')
    """
    readers: dict[str, list[str]] = {}
    for feature_set in feature_sets:
        if feature_set.derived:
            readers.setdefault(feature_set.where or "TRUE", []).append(feature_set.qualified_name)
    return [(f"derived_{source}_{i}", f"SELECT * FROM `{source}` WHERE {where}", tuple(names))
            for i, (where, names) in enumerate(readers.items())]


def sorted_set_query(spec: SortedSetSpec, source: str = "engagement") -> str:
    """The SELECT feeding a serving sorted set: one (key..., member, score) row per group, or per event for a
    `per_event` set (no state: the sink keeps each member's greatest score). Derived columns are computed in a
    subquery over `source`, so keys, member, score and `where` name them like any other column.

    >>> from features.serving_sets import USER_MARKET
    >>> print(sorted_set_query(USER_MARKET).splitlines()[1])
    FROM (SELECT *, `region` || ':' || `language` AS `market` FROM `engagement`) AS src
    """
    groups = [f"`{c}`" for c in (*spec.key_columns, spec.member_column)]
    not_empty = " AND ".join(f"{g} IS NOT NULL AND {g} <> ''" for g in groups)
    columns = f"{', '.join(groups)}, CAST({spec.score} AS DOUBLE) AS `score`"
    where = f"WHERE ({spec.where}) AND {not_empty}"
    relation = f"`{source}`"
    if spec.derived:
        relation = f"(SELECT *, {', '.join(f'{d.sql} AS `{d.name}`' for d in spec.derived)} FROM `{source}`)"
    if spec.per_event:
        return double_literals(f"SELECT {columns}\nFROM {relation} AS src\n{where}")
    hint = f"/*+ STATE_TTL('src' = '{int(spec.state_ttl.total_seconds())}s') */"
    return double_literals(f"SELECT {hint} {columns}\nFROM {relation} AS src\n{where}\nGROUP BY {', '.join(groups)}")


def derived_failure_checks(feature_sets: Iterable[FeatureSet], guarded: Iterable[str]) -> list[tuple[str, str]]:
    """(row filter, failure expression) per distinct use of a guarded function by some set's derived columns: the
    expression is the reason a row's derived value is NULL (or NULL), the filter the set's `where` that keeps the
    function from other rows. Sets sharing a derived column (video and author sentiment) share one check.

    >>> from features.comments import video_comment_sentiment
    >>> derived_failure_checks([video_comment_sentiment.v1], ["COMMENT_SENTIMENT"])
    [("event_type = 'comment'", 'COMMENT_SENTIMENT_FAILURE(`comment_text`)')]
    """
    names = set(guarded)
    checks: dict[tuple[str, str], None] = {}
    for feature_set in feature_sets:
        failures = []
        for column in feature_set.derived:
            calls = [name for name in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", column.sql) if name in names]
            if calls:
                sql = column.sql
                for name in set(calls):
                    sql = re.sub(rf"\b{name}\s*\(", f"{failure_function(name)}(", sql)
                failures.append(sql)
        if failures:
            expression = failures[0] if len(failures) == 1 else f"COALESCE({', '.join(failures)})"
            checks[(feature_set.where or "TRUE", expression)] = None
    return list(checks)


# Exploration's running counts (jobs/exploration.py) of the declarations' own aggregations.
COUNTER_NAMES = ("impressions", "plays", "completions", "likes")


def counters_query(source: str, counters: dict[str, Aggregation]) -> str:
    """Running per-video totals, one output row per input row (an append-only OVER aggregation, so that the
    decision below can be deduplicated per video with keyed state).

    source: a view of engagement rows with a processing-time attribute `proc_time`.
    counters: the aggregation counted as each of COUNTER_NAMES (features/exploration.py: the feature
        declarations' own predicates, so "completion" means the same here as in Redis).
    """
    missing = set(COUNTER_NAMES) - set(counters)
    if missing:
        raise ValueError(f"counters lack {sorted(missing)}")
    relevant = " OR ".join(f"({counters[n].where})" if counters[n].where else "TRUE" for n in COUNTER_NAMES)
    sums = ",\n  ".join(f"CAST(SUM(CAST({counters[n].value_sql()} AS DOUBLE)) OVER w AS BIGINT) AS `{n}`"
                         for n in COUNTER_NAMES)
    return ("SELECT `video_id`, `author_id`, `event_time`, `proc_time`,\n"
            f"  MIN(`event_time`) OVER w AS `first_seen_ms`,\n  {sums}\nFROM `{source}`\n"
            f"WHERE `video_id` IS NOT NULL AND `video_id` <> '' AND ({relevant})\n"
            "WINDOW w AS (PARTITION BY `video_id` ORDER BY `proc_time` "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")
