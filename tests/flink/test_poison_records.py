"""Poison records on Flink (mini cluster, in-memory input): a derived column's Python function that throws on one
record, or runs over its time budget on another, neither fails nor wedges the job. Those records leave the
feature set and come out of the dead-letter branch with a reason; every other record is featured."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from pyflink.table import DataTypes

from featurespec import VIDEO, Aggregation, DerivedColumn, FeatureSet
from featurespec.sql import feature_query
from jobs.engagement_features import derived_failure_rows, engagement_views
from schemas.registry import default_registry
from tests.flink.conftest import final_rows, raw_view
from udfs.flink_functions import guarded_functions
from udfs.guard import GuardedFunction

NOW = int(time.time() * 1000)
TEXTS = ["fine", "boom", "slow", "also fine"]  # offsets 0..3


def probe(text: str) -> float:
    """Throws on "boom", sleeps past the 300 ms budget on "slow", else the text's length."""
    if text == "boom":
        raise ValueError("poison")
    if text == "slow":
        time.sleep(0.6)
    return float(len(text))


PROBE_SET = FeatureSet(
    name="poison_probe", version=1, entity=VIDEO, windows=(timedelta(hours=1),), where="event_type = 'comment'",
    derived=(DerivedColumn(name="length", sql="PROBE(`comment_text`)"),),
    aggregations=(Aggregation(name="scored", operation="count"),
                  Aggregation(name="length_sum", operation="sum", expression="length")),
)


def _comment(text: str) -> bytes:
    return default_registry().encode("Comment", {
        "event_id": str(uuid.uuid4()), "event_time": NOW, "user_id": "u1", "video_id": "v1", "author_id": "a1",
        "sound_id": None, "region": "US", "language": "en", "session_id": "s1", "hashtags": [],
        "comment_id": "c1", "text": text})


def test_a_throwing_and_a_slow_record_become_dead_letters_and_the_rest_is_featured(t_env):
    raw_view(t_env, [_comment(t) for t in TEXTS])
    engagement_views(t_env, "raw", allowed_lateness=timedelta(hours=3))
    for name, function in guarded_functions(GuardedFunction("PROBE", probe, budget_ms=300),
                                            DataTypes.DOUBLE()).items():
        t_env.create_temporary_system_function(name, function)

    rows = final_rows(t_env.sql_query(feature_query(PROBE_SET)).execute(), key_width=1)
    values = dict(zip(["video_id", "event_time", *PROBE_SET.columns()], rows[("v1",)], strict=True))
    assert values["scored_1h"] == 2  # "fine" and "also fine" only
    assert values["length_sum_1h"] == len("fine") + len("also fine")

    [failures] = derived_failure_rows([PROBE_SET], guarded=["PROBE"])
    with t_env.sql_query(f"SELECT kafka_offset, reason FROM ({failures})").execute().collect() as results:
        reasons = {row[0]: row[1] for row in results}
    assert set(reasons) == {1, 2}
    assert reasons[1] == "udf_error:PROBE:ValueError"
    assert reasons[2].startswith("udf_over_budget:PROBE:")
