"""`fyp bench cost` arithmetic, and `fyp bench freshness --rates` order and parsing, on plain data."""

from __future__ import annotations

import pytest
import typer

from fyp.bench import freshness
from fyp.bench.cost import idle_cost, per_thousand_events
from fyp.bench.freshness import FreshnessResult, run_freshness_rates
from fyp.commands.bench import _parse_rates


def test_idle_cost_is_a_share_of_one_core_and_ms_per_second() -> None:
    assert idle_cost(0.6, 60.0) == (1.0, 10.0)
    assert idle_cost(0.0, 5.0) == (0.0, 0.0)
    with pytest.raises(ValueError):
        idle_cost(1.0, 0.0)


def test_cost_per_thousand_events_net_of_idle_subtracts_the_idle_rate_over_the_window() -> None:
    # 30 CPU-s for 300k events over 65 s, with 50 ms/s idle: gross 100 ms, net (30,000 - 3,250) / 300 = 89.17 ms.
    assert per_thousand_events(30.0, 300_000, 65.0, 50.0) == (100.0, 89.17)
    assert per_thousand_events(1.0, 0, 10.0, 5.0) == (None, None)


def test_rates_run_in_order_each_after_a_drain_and_a_pause(monkeypatch) -> None:
    steps: list[str] = []
    drains = iter([0.5, None])  # the second rate met a backlog that did not drain in time
    monkeypatch.setattr(freshness, "require_features_job", lambda _settings: None)
    monkeypatch.setattr(freshness, "drain", lambda _settings, timeout_s: steps.append("drain") or next(drains))
    monkeypatch.setattr(freshness.time, "sleep", lambda s: steps.append(f"pause {s:g}"))
    monkeypatch.setattr(freshness, "load_average_1m", lambda: 2.0)
    # Counters read before and after each run: 1 checkpoint and 0 snapshots in the first run, 2 and 1 in the second.
    checkpoints, forks = iter([4, 5, 5, 7]), iter([9, 9, 9, 10])
    monkeypatch.setattr(freshness, "completed_checkpoints", lambda _settings: next(checkpoints))
    monkeypatch.setattr(freshness, "redis_forks", lambda _settings: next(forks))

    def run(_settings, *, rate, duration_s, probe_interval_s, users, videos) -> FreshnessResult:
        steps.append(f"rate {rate:g}")
        return FreshnessResult(rate_requested=rate, rate_held=rate - 1, produced=int(rate * duration_s), probes=20,
                               missing=0, latency={"samples": 20, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0,
                                                   "max_ms": 4.0})

    monkeypatch.setattr(freshness, "run_freshness", run)
    progress: list[int] = []
    results = run_freshness_rates(object(), [1000, 2000], duration_s=10, pause_s=5,
                                  on_progress=lambda done, _text: progress.append(done))
    assert steps == ["drain", "pause 5", "rate 1000", "drain", "pause 5", "rate 2000"]
    assert [(r["rate_requested"], r["p99_ms"], r["drain_before_s"]) for r in results] == [
        (1000, 3.0, 0.5), (2000, 3.0, None)]
    assert results[0]["load_1m_start"] == 2.0 and "latency" not in results[0]
    assert [(r["checkpoints"], r["redis_snapshots"]) for r in results] == [(1, 0), (2, 1)]
    assert progress == [0, 0, 0, 1, 1, 1]


def test_rates_parse_from_a_comma_separated_list() -> None:
    assert _parse_rates("5000,10000, 20000,") == [5000.0, 10000.0, 20000.0]
    for bad in ("", "5k", "0,100"):
        with pytest.raises(typer.BadParameter):
            _parse_rates(bad)
