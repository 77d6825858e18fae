"""Which rows reach a derived column's Python function (featurespec `DerivedColumn`, udfs/guard.py).

A probe function records, in a file, whether each call got a comment's text or a non-comment row's NULL. The
job's own wiring (`derived_views`, `derived_failure_rows(share=...)`) must call it on the set's rows only: the
filter runs in Java ahead of it. Without those shared views the planner computes the function ahead of the
filter, on every deduplicated (and, for the dead-letter check, every decoded) row: the second test pins that
down, since it is why the views exist (featurespec.sql.feature_query)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from pyflink.table import DataTypes, TableEnvironment

from featurespec import VIDEO, Aggregation, DerivedColumn, FeatureSet
from featurespec.sql import feature_query
from jobs.engagement_features import JOB_CONFIG, derived_failure_rows, derived_views, engagement_views, sharing
from schemas.registry import default_registry
from tests.flink.conftest import final_rows, new_stream_t_env, raw_view
from udfs.flink_functions import guarded_functions
from udfs.guard import GuardedFunction

NOW = int(time.time() * 1000)
MINI_BATCH = {k: v for k, v in JOB_CONFIG.items() if k.startswith("table.exec.mini-batch")}
COMMENTS, WATCHES = ["nice", "meh", "wow"], 12



def _probe_set(function: str) -> FeatureSet:
    """A comment set whose derived column calls `function`. Each test names its own: a Python worker keeps the
    first guard it opens under a name (udfs/flink_functions.py `_SHARED_GUARDS`), and may outlive a test."""
    return FeatureSet(
        name="row_probe", version=1, entity=VIDEO, windows=(timedelta(hours=1),), where="event_type = 'comment'",
        derived=(DerivedColumn(name="length", sql=f"{function}(`comment_text`, `event_id`)"),),
        aggregations=(Aggregation(name="scored", operation="count"),
                      Aggregation(name="length_sum", operation="sum", expression="length")),
    )


def _recording(path: Path) -> Callable[[str | None, str], float]:
    # The event id makes every row's arguments distinct: the guard remembers answers by arguments (udfs/guard.py),
    # so without it the NULL text of every non-comment row would be evaluated once.
    def probe(text: str | None, _event_id: str) -> float:
        with open(path, "a") as calls:  # the Python worker is another process: a file is what both see
            calls.write("comment\n" if text is not None else "other\n")
        return float(len(text or ""))
    return probe


def _payloads() -> list[bytes]:
    registry = default_registry()
    common = {"event_time": NOW, "user_id": "u1", "video_id": "v1", "author_id": "a1", "sound_id": None,
              "region": "US", "language": "en", "session_id": "s1", "hashtags": []}
    comments = [registry.encode("Comment", {**common, "event_id": str(uuid.uuid4()), "comment_id": f"c{i}",
                                            "text": text}) for i, text in enumerate(COMMENTS)]
    watches = [registry.encode("Watch", {**common, "event_id": str(uuid.uuid4()), "watch_ms": 1_000,
                                         "video_duration_ms": 10_000}) for _ in range(WATCHES)]
    return watches[:6] + comments + watches[6:]


def _probe_views(t_env: TableEnvironment, function: str, calls: Path, *, shared: bool) -> None:
    raw_view(t_env, _payloads())
    engagement_views(t_env, "raw", allowed_lateness=timedelta(hours=3), shared=shared)
    guard = GuardedFunction(function, _recording(calls))
    for name, udf in guarded_functions(guard, DataTypes.DOUBLE()).items():
        t_env.create_temporary_system_function(name, udf)


def _run(t_env: TableEnvironment, feature_set: FeatureSet, set_query: str, failures: str) -> dict:
    rows = final_rows(t_env.sql_query(set_query).execute(), key_width=1)
    with t_env.sql_query(failures).execute().collect() as results:
        assert list(results) == []  # the probe never fails
    return dict(zip(["video_id", "event_time", *feature_set.columns()], rows[("v1",)], strict=True))


def test_the_jobs_shared_views_keep_the_function_to_the_sets_rows(tmp_path) -> None:
    calls, probe_set = tmp_path / "calls", _probe_set("PROBE_SHARED")
    t_env = new_stream_t_env(MINI_BATCH)
    _probe_views(t_env, "PROBE_SHARED", calls, shared=True)
    source = derived_views(t_env, [probe_set])[probe_set.qualified_name]
    [failures] = derived_failure_rows([probe_set], guarded=["PROBE_SHARED"], share=sharing(t_env))

    values = _run(t_env, probe_set, feature_query(probe_set, source=source), failures)

    assert values["scored_1h"] == len(COMMENTS)
    assert values["length_sum_1h"] == sum(len(t) for t in COMMENTS)
    seen = calls.read_text().split()
    assert seen and set(seen) == {"comment"}, seen  # never a watch


def test_without_them_the_planner_calls_it_on_every_row(tmp_path) -> None:
    calls, probe_set = tmp_path / "calls", _probe_set("PROBE_PLAIN")
    t_env = new_stream_t_env(MINI_BATCH)
    _probe_views(t_env, "PROBE_PLAIN", calls, shared=False)
    [failures] = derived_failure_rows([probe_set], guarded=["PROBE_PLAIN"])

    values = _run(t_env, probe_set, feature_query(probe_set), failures)

    assert values["scored_1h"] == len(COMMENTS)  # the same values
    assert calls.read_text().split().count("other") >= WATCHES  # but every watch went through Python
