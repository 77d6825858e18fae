"""The key-family operators (featurespec/families.py, Java `FamilyOperator`) against the per-set SQL path.

The same generated events (with their malformed records and duplicates) go through the job's decode and
deduplication views, under the job's own mini-batch settings, then through both paths, in one Flink job;
every set of every family must end with the same row per key: the same keys and event times, and values equal
within 1e-12 relative. Both paths fold rows with the same FEATURE_VECTOR code; a sum can still differ in its last
bit between them (seen on the decayed and watch-ratio sums; the order of additions was not traced)."""

from __future__ import annotations

import math

import pytest
from pyflink.table import StreamTableEnvironment

from features import ALL_FEATURE_SETS
from featurespec import FeatureSet
from featurespec.families import families, family_input_query, family_output_query, family_spec
from featurespec.sql import feature_query
from fyp.traffic import TrafficConfig, TrafficGenerator
from jobs.engagement_features import JOB_CONFIG, engagement_views
from tests.flink.conftest import final_rows, new_stream_t_env, raw_view
from udfs.flink_families import family_view

NOW = 1_700_000_000_000
MINI_BATCH = {k: v for k, v in JOB_CONFIG.items() if k.startswith("table.exec.mini-batch")}


@pytest.fixture(scope="module")
def payloads() -> list[bytes]:
    generator = TrafficGenerator(TrafficConfig(users=40, videos=60), 5, clock=lambda: NOW)
    return [value for _, value in generator.next_batch(900).pairs]


def _stream_t_env() -> StreamTableEnvironment:
    return new_stream_t_env(MINI_BATCH)


def _as_rows(feature_set: FeatureSet, query: str, path: str) -> str:
    """One shape for every set and path: (set, path, key, subkey, event_time, values)."""
    keys = [f"`{k}`" for k in feature_set.entity.key_columns]
    sub = keys[1] if len(keys) == 2 else "CAST(NULL AS STRING)"
    values = ", ".join(f"`{c}`" for c in feature_set.columns())
    return (f"SELECT '{feature_set.name}' AS s, '{path}' AS p, {keys[0]} AS k, {sub} AS sk, `event_time`, "
            f"ARRAY[{values}] AS vals FROM ({query})")


def _same(sql: tuple | None, family: tuple | None) -> bool:
    if sql is None or family is None:
        return False
    *_, sql_time, sql_values = sql
    *_, family_time, family_values = family
    return sql_time == family_time and len(sql_values) == len(family_values) and all(
        math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9) for a, b in zip(sql_values, family_values, strict=True))


def test_every_family_set_equals_its_per_set_sql(payloads) -> None:
    t_env = _stream_t_env()
    raw_view(t_env, payloads)
    engagement_views(t_env, "raw", shared=True)  # as the job does when it runs families
    parts = []
    sets = []
    for family in families(ALL_FEATURE_SETS):
        view = family_view(t_env, f"family_{family.name}", family_input_query(family), family_spec(family))
        for feature_set in family.sets:
            sets.append(feature_set.name)
            parts.append(_as_rows(feature_set, feature_query(feature_set), "sql"))
            parts.append(_as_rows(feature_set, family_output_query(family, feature_set, view), "family"))
    rows = final_rows(t_env.sql_query(" UNION ALL ".join(parts)).execute(), key_width=4)
    assert len(sets) >= 6 and "user_hashtag_affinity" in sets and "user_author_affinity" in sets
    for name in sets:
        expected = {(k, sk): v for (s, p, k, sk), v in rows.items() if s == name and p == "sql"}
        actual = {(k, sk): v for (s, p, k, sk), v in rows.items() if s == name and p == "family"}
        assert expected, f"{name}: the generated events produced no row"
        differing = sorted(k for k in expected.keys() | actual.keys() if not _same(expected.get(k), actual.get(k)))
        assert not differing, (f"{name}: {len(differing)} of {len(expected)} keys differ from the SQL path, e.g. "
                               f"{differing[0]}: sql {expected.get(differing[0])}, family {actual.get(differing[0])}")


def _event_ids(t_env, query: str) -> list[str]:
    with t_env.sql_query(query).execute().collect() as rows:
        return [row[0] for row in rows]


def test_the_java_deduplication_keeps_the_rows_the_sql_one_keeps_in_arrival_order(payloads) -> None:
    """The job's deduplication (shared views: the Java `KeepFirst`) keeps the same events as the SQL one (the
    per-set SQL path), and releases them in the order they arrived: the SQL one, under the job's mini-batch,
    releases a mini-batch in hash order, which is what made a served value lack scattered events (issue #17)."""
    doubled = payloads + payloads[::7]  # more repeats, some after their first copy's mini-batch
    java = _stream_t_env()
    raw_view(java, doubled)
    engagement_views(java, "raw", shared=True)
    arrived = _event_ids(java, "SELECT event_id FROM decoded WHERE error IS NULL")
    kept = _event_ids(java, "SELECT event_id FROM engagement")

    sql = _stream_t_env()
    raw_view(sql, doubled)
    engagement_views(sql, "raw", shared=False)
    kept_by_sql = _event_ids(sql, "SELECT event_id FROM engagement")

    assert len(arrived) > len(set(arrived)) > 500  # the input repeats events
    assert sorted(kept) == sorted(kept_by_sql) == sorted(set(arrived))
    assert kept == list(dict.fromkeys(arrived))  # first copies, in arrival order
