"""Key families: the feature sets that one keyed Java operator computes together (docs/PERFORMANCE.md).

A family is every set keyed by one engagement column (the family key, e.g. `user_id`), either directly (the
user set) or with a sub-key under it (user x author, user x hashtag). The features job sends one row per event
to the family's operator (`dev.fyp.flink.families.FamilyOperator`, udfs/java/aggregates) instead of one row per
set to one GROUP BY each, and the operator updates every set of the family per key and bundle with the same
FEATURE_VECTOR code. This module compiles a family from the declarations: the SQL of its input rows, the
operator's spec, and the SQL that splits its output back into each set's sink columns. Sets with derived
(possibly Python) columns and few-key entities (pre-aggregated two-phase, `Entity.few_keys`) stay on the
per-set SQL path (`featurespec.sql.feature_query`), which remains the reference the family path is tested
against (tests/flink/test_families.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from featurespec.declaration import FeatureSet, double_literals
from featurespec.sql import default_state_ttl, sink_columns, vector_spec

__all__ = ["Family", "families", "family_input_query", "family_output_query", "family_spec", "in_family"]


@dataclass(frozen=True, kw_only=True)
class Family:
    """The sets keyed by `key_column`, with their numbers in the job (the tag of the operator's output rows)."""

    key_column: str
    sets: tuple[FeatureSet, ...]
    indexes: tuple[int, ...]

    @property
    def name(self) -> str:
        return self.key_column.removesuffix("_id")


def in_family(feature_set: FeatureSet) -> bool:
    """Whether a set goes to a family operator: no derived columns, not a few-key entity, and keyed by one
    column or by a column and one sub-key (a second column, or the exploded hashtag)."""
    keys = feature_set.entity.key_columns
    return not feature_set.derived and not feature_set.entity.few_keys and len(keys) in (1, 2)


def families(feature_sets: Iterable[FeatureSet]) -> tuple[Family, ...]:
    """The family sets of `feature_sets` grouped by family key, in order of first appearance; a set's index is
    its position in `feature_sets`."""
    grouped: dict[str, list[tuple[int, FeatureSet]]] = {}
    for index, feature_set in enumerate(feature_sets):
        if in_family(feature_set):
            grouped.setdefault(feature_set.entity.key_columns[0], []).append((index, feature_set))
    return tuple(Family(key_column=key, sets=tuple(fs for _, fs in members), indexes=tuple(i for i, _ in members))
                 for key, members in grouped.items())


def _sub_key(feature_set: FeatureSet) -> str | None:
    keys = feature_set.entity.key_columns
    return keys[1] if len(keys) == 2 else None


def family_spec(family: Family) -> str:
    """The operator's spec: one `index|sub|ttl_ms|vector_spec` line per set (FamilySpec.java)."""
    return "\n".join(
        f"{index}|{int(_sub_key(fs) is not None)}|{int(default_state_ttl(fs).total_seconds() * 1000)}|"
        f"{vector_spec(fs)}" for index, fs in zip(family.indexes, family.sets, strict=True))


def _not_empty(column: str) -> str:
    return f"`{column}` IS NOT NULL AND `{column}` <> ''"


def family_input_query(family: Family, source: str = "engagement") -> str:
    """One row per event that some set of the family counts: `k, event_time`, then per set its sub-keys
    (ARRAY<STRING>: the sub-key column as a one-element array, the hashtags, or NULL for the family key itself)
    and its values (ARRAY<DOUBLE>, NULL when the set does not count the event). The conditions are
    `feature_query`'s: non-empty keys, the set's `where` and `counted_where`; an empty hashtag is skipped by
    the operator, per element, as the SQL explode's condition does."""
    columns = [f"`{family.key_column}` AS `k`", "`event_time`"]
    counted: list[str] = []
    for position, feature_set in enumerate(family.sets):
        conditions: list[str] = []
        sub = _sub_key(feature_set)
        if sub == "hashtag":
            subkeys = "`hashtags`"
            conditions.append("`hashtags` IS NOT NULL")
        elif sub is not None:
            subkeys = f"ARRAY[`{sub}`]"
            conditions.append(_not_empty(sub))
        else:
            subkeys = "CAST(NULL AS ARRAY<STRING>)"
        if feature_set.where:
            conditions.append(f"({feature_set.where})")
        if feature_set.counted_where:
            conditions.append(f"({feature_set.counted_where})")
        condition = " AND ".join(conditions) or "TRUE"
        values = ", ".join(f"CAST({a.value_sql()} AS DOUBLE)" for a in feature_set.aggregations)
        columns.append(f"{subkeys} AS `s{position}`")
        columns.append(f"CASE WHEN {condition} THEN ARRAY[{values}] END AS `v{position}`")
        counted.append(f"({condition})")
    where = f"{_not_empty(family.key_column)} AND ({' OR '.join(counted)})"
    return double_literals(f"SELECT {', '.join(columns)}\nFROM `{source}`\nWHERE {where}")


def family_output_query(family: Family, feature_set: FeatureSet, source: str) -> str:
    """The rows of one set from the operator's output view `source`, with exactly `sink_columns(feature_set)`."""
    index = family.indexes[family.sets.index(feature_set)]
    keys = feature_set.entity.key_columns
    key_columns = [f"`k` AS `{keys[0]}`", *([f"`subkey` AS `{keys[1]}`"] if len(keys) == 2 else [])]
    flat = [f"`vals`[{i}] AS `{c}`" for i, c in enumerate(feature_set.columns(), start=1)]
    assert [n for n, _ in sink_columns(feature_set)] == [*keys, "event_time", *feature_set.columns()]
    return f"SELECT {', '.join([*key_columns, '`event_time`', *flat])}\nFROM `{source}`\nWHERE `set_index` = {index}"
