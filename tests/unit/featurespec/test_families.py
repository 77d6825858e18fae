"""Key families compiled from the declarations (featurespec/families.py), without a cluster."""

from __future__ import annotations

from features import ALL_FEATURE_SETS
from features.comments import video_comment_sentiment
from features.engagement import region_language_engagement, user_hashtag_affinity
from featurespec.families import families, family_input_query, family_output_query, family_spec, in_family
from featurespec.sql import sink_columns


def test_sets_group_by_their_first_key_column_and_keep_their_job_index() -> None:
    grouped = {f.key_column: [fs.name for fs in f.sets] for f in families(ALL_FEATURE_SETS)}
    assert grouped["user_id"] == ["user_engagement", "user_author_affinity", "user_hashtag_affinity"]
    assert grouped["video_id"] == ["video_engagement"]
    for family in families(ALL_FEATURE_SETS):
        assert [ALL_FEATURE_SETS[i] for i in family.indexes] == list(family.sets)


def test_derived_and_few_key_sets_stay_on_the_per_set_sql_path() -> None:
    assert not in_family(video_comment_sentiment.v1)  # a Python scorer: filtered before it runs, in SQL
    assert not in_family(region_language_engagement.v1)  # pre-aggregated two-phase
    assert in_family(user_hashtag_affinity.v1)


def test_the_spec_names_each_set_its_sub_key_its_ttl_and_its_vector() -> None:
    user = next(f for f in families(ALL_FEATURE_SETS) if f.key_column == "user_id")
    lines = [line.split("|") for line in family_spec(user).splitlines()]
    assert [(line[1]) for line in lines] == ["0", "1", "1"]
    assert all(int(line[2]) == 25 * 3600 * 1000 for line in lines)  # 24 h window + 1 h
    assert lines[2][3] == "3600000/12,86400000/12;1800000,86400000"


def test_input_rows_carry_each_sets_conditions_and_the_hashtags_as_sub_keys() -> None:
    user = next(f for f in families(ALL_FEATURE_SETS) if f.key_column == "user_id")
    sql = family_input_query(user)
    assert "ARRAY[`author_id`] AS `s1`" in sql and "`hashtags` AS `s2`" in sql
    assert "`author_id` IS NOT NULL AND `author_id` <> ''" in sql
    assert "`user_id` IS NOT NULL AND `user_id` <> ''" in sql
    assert " 1.0 " not in sql  # DOUBLE literals only


def test_output_rows_have_exactly_the_sinks_columns() -> None:
    for family in families(ALL_FEATURE_SETS):
        for feature_set in family.sets:
            sql = family_output_query(family, feature_set, "out")
            names = [c for c, _ in sink_columns(feature_set)]
            assert all(f"AS `{name}`" in sql or name == "event_time" for name in names)
            assert sql.endswith(f"`set_index` = {ALL_FEATURE_SETS.index(feature_set)}")
