"""fyp/bench/feed.py's loop over a plain function standing in for the service."""

from __future__ import annotations

import time

from fyp.bench.feed import run_feed_bench


def test_levels_rates_stages_and_errors_are_reported():
    calls: list[str] = []

    def call(user: str) -> dict:
        calls.append(user)
        if user == "broken":
            raise RuntimeError("503: index down")
        time.sleep(0.001)
        return {"timings_ms": {"candidates": 0.5, "fine": 0.2, "total": 1.0}}

    result = run_feed_bench(call, ["u1", "u2", "broken"], levels=(1, 2), duration_s=0.3, warmup=2)
    assert [level["clients"] for level in result["levels"]] == [1, 2]
    for level in result["levels"]:
        assert level["feeds"] > 0 and level["feeds_per_s"] > 0 and level["errors"] > 0
        assert level["first_error"] == "503: index down"
        assert level["p50_ms"] >= 1.0 and set(level["stages"]) == {"candidates", "fine", "total"}
    assert set(calls) == {"u1", "u2", "broken"}
    assert result["targets"]["p99_met"] in (True, False) and len(result["load_average"]["before"]) == 3
