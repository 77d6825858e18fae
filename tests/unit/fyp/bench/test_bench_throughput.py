"""`compare`: rounds in order, every peer of PEERS, medians per contestant, ratios of medians (the runs themselves
are stubbed); `summarize` and the /proc helpers on plain data."""

from __future__ import annotations

import itertools

import pytest

from fyp.bench import throughput
from fyp.bench.peers import runner
from fyp.bench.proc_cpu import cpu_between, parse_loadavg, parse_stat_cpu_ticks
from fyp.bench.throughput import FlinkRun, compare
from fyp.bench.throughput_report import summarize
from schemas.topics import ENGAGEMENT

SETTINGS = object()  # passed through to the stubbed runs, never read


def _flink_run(events: int, rate: float, cpu: float | None = None) -> FlinkRun:
    return FlinkRun(events=events, seconds=events / rate, events_per_s=rate, job_id="j",
                    submit_to_last_s=events / rate + 5, cpu_seconds=cpu)


@pytest.fixture
def quiet_stack(monkeypatch) -> None:
    """No other job, a steady load average, Redis forks from `redis_forks` unless a test replaces it."""
    monkeypatch.setattr(throughput, "list_jobs", lambda _settings: [])
    monkeypatch.setattr(throughput, "load_average_1m", lambda: 1.5)
    monkeypatch.setattr(throughput, "redis_forks", lambda _settings: 0)


def test_rounds_interleave_and_figures_are_medians(monkeypatch, quiet_stack) -> None:
    order: list[str] = []
    all_sets, video_only = iter([10.0, 30.0, 20.0]), iter([100.0, 90.0, 300.0])
    peers = {"quix": iter([10.0, 12.0, 11.0]), "naive": iter([20.0, 25.0, 30.0])}

    def flink(_settings, _topic, events, *, timeout, only_feature_sets=(), properties=None,
              per_set_sql=False) -> FlinkRun:
        assert not per_set_sql
        order.append("video" if only_feature_sets else "all")
        return _flink_run(events, next(video_only if only_feature_sets else all_sets))

    def peer(name, _settings, *, events, group_id, timeout_s, topic) -> dict:
        order.append(name)
        assert group_id.startswith(f"bench-{name}-")
        return {"events_per_s": next(peers[name])}

    def forks(_settings) -> int:  # Redis starts one snapshot during the second round's all-sets run
        return 5 + (order.count("all") >= 2)

    monkeypatch.setattr(throughput, "run_flink_bounded", flink)
    monkeypatch.setattr(runner, "run_peer", peer)
    monkeypatch.setattr(runner, "PEERS", ("quix", "naive"))
    monkeypatch.setattr(throughput, "redis_forks", forks)
    data = compare(SETTINGS, ENGAGEMENT, 1_000, repeat=3, warmup=False)
    assert order == list(itertools.chain.from_iterable(["all", "video", "quix", "naive"] for _ in range(3)))
    assert data["runs"] == {"all_sets": [10.0, 30.0, 20.0], "video_only": [100.0, 90.0, 300.0],
                            "quix": [10.0, 12.0, 11.0], "naive": [20.0, 25.0, 30.0]}
    assert (data["events_per_s"], data["video_only_events_per_s"]) == (20.0, 100.0)
    assert (data["quix_events_per_s"], data["naive_events_per_s"]) == (11.0, 25.0)
    assert (data["flink_vs_quix"], data["flink_vs_naive"]) == (9.09, 4.0)
    assert data["flink_seconds"] == 50.0  # median of 100, 33.3, 50
    assert data["medians"]["all_sets"]["submit_to_last_s"] == 55.0
    assert data["redis_snapshots"] == {"all_sets": [0, 1, 0], "video_only": [0, 0, 0], "quix": [0, 0, 0],
                                       "naive": [0, 0, 0]}
    assert [(r["round"], r["load_1m_start"], r["load_1m_end"]) for r in data["rounds"]] == [
        (1, 1.5, 1.5), (2, 1.5, 1.5), (3, 1.5, 1.5)]


def test_every_peer_in_PEERS_runs_and_gets_its_ratios(monkeypatch, quiet_stack) -> None:
    ran: list[str] = []

    def peer(name, _settings, **_kwargs) -> dict:
        ran.append(name)
        return {"events_per_s": 50.0, "cpu_seconds": 20.0, "events_per_cpu_s": 50.0, "first_to_last_s": 20.0,
                "submit_to_last_s": 23.0}

    monkeypatch.setattr(throughput, "run_flink_bounded", lambda *_a, **_k: _flink_run(1_000, 100.0, cpu=5.0))
    monkeypatch.setattr(runner, "run_peer", peer)
    monkeypatch.setattr(runner, "PEERS", ("quix", "naive", "bytewax"))
    data = compare(SETTINGS, ENGAGEMENT, 1_000, warmup=False)
    assert ran == ["quix", "naive", "bytewax"]
    assert {data[f"flink_vs_{name}"] for name in ran} == {2.0}  # 100 / 50 events/s
    assert {data[f"flink_vs_{name}_per_cpu"] for name in ran} == {4.0}  # 200 / 50 events per CPU-second


def test_without_peers_only_the_job_runs(monkeypatch, quiet_stack) -> None:
    monkeypatch.setattr(throughput, "run_flink_bounded", lambda *a, **k: _flink_run(10, 10.0, cpu=0.5))
    data = compare(SETTINGS, ENGAGEMENT, 10, peers=False, warmup=False)
    assert (data["events_per_s"], data["flink_seconds"], data["events_per_cpu_s"]) == (10.0, 1.0, 20.0)
    assert data["runs"] == {"all_sets": [10.0]} and data["redis_snapshots"] == {"all_sets": [0]}
    assert not any(key.startswith("flink_vs") for key in data)


def test_the_warmup_run_comes_first_and_is_not_counted(monkeypatch, quiet_stack) -> None:
    rates = iter([5.0, 10.0, 30.0])
    monkeypatch.setattr(throughput, "run_flink_bounded", lambda *_a, **_k: _flink_run(10, next(rates)))
    data = compare(SETTINGS, ENGAGEMENT, 10, repeat=2, peers=False)
    assert (data["warmup_events_per_s"], data["runs"]["all_sets"], data["events_per_s"]) == (5.0, [10.0, 30.0], 20.0)


def _contestant(rate: float, cpu: float | None, span: float | None = None) -> dict:
    return {"events_per_s": rate, "events_per_cpu_s": None if cpu is None else round(1_000 / cpu, 1),
            "cpu_seconds": cpu, "first_to_last_s": 1_000 / rate, "submit_to_last_s": span}


def test_summarize_ratios_compare_medians_and_skip_what_was_not_measured() -> None:
    rounds = [{"round": i, "load_1m_start": 1.0, "load_1m_end": 2.0, "all_sets": _contestant(10.0, 50.0),
               "video_only": _contestant(100.0, c), "slow": _contestant(20.0, 10.0, span)}
              for i, (c, span) in enumerate([(2.0, None), (4.0, 60.0), (5.0, 62.0)], start=1)]
    data = summarize(rounds, ["slow"])
    assert data["video_only_events_per_cpu_s"] == 250.0  # median of 500, 250, 200
    assert data["flink_vs_slow"] == 5.0 and data["flink_vs_slow_per_cpu"] == 2.5  # 250 / 100 events per CPU-s
    assert data["medians"]["slow"]["submit_to_last_s"] == 61.0  # the round without it is skipped
    assert data["medians"]["video_only"]["submit_to_last_s"] is None
    assert data["repeat"] == 3 and data["rounds"] == rounds and "flink" in data["clocks"]


def test_a_ratio_is_none_where_a_side_was_not_measured() -> None:
    rounds = [{"round": 1, "all_sets": _contestant(10.0, None), "video_only": _contestant(100.0, None),
               "slow": _contestant(20.0, 10.0)}]
    assert summarize(rounds, ["slow"])["flink_vs_slow_per_cpu"] is None


def test_proc_stat_fields_are_counted_after_the_command_name() -> None:
    # A command name may hold spaces and parentheses; utime and stime are the 14th and 15th fields.
    stat = "4242 (java (tm) x) S 1 4242 4242 0 -1 4194560 9 0 0 0 1500 250 7 8 20 0 60 0 12345"
    assert parse_stat_cpu_ticks(stat) == 1_750
    assert parse_loadavg("0.52 0.58 0.59 1/467 12345\n") == 0.52


def test_cpu_between_interpolates_and_clamps() -> None:
    samples = [(10.0, 100.0), (10.2, 100.1), (10.4, 100.5)]
    assert cpu_between(samples, 10.1, 10.3) == pytest.approx(0.25)  # 100.05 -> 100.3
    assert cpu_between(samples, 9.0, 11.0) == pytest.approx(0.5)  # outside the samples: their ends
    assert cpu_between(samples, 10.2, 10.2) == 0.0
    with pytest.raises(ValueError):
        cpu_between([], 0.0, 1.0)


def test_per_set_sql_runs_right_after_all_sets_and_gets_its_ratio(monkeypatch, quiet_stack) -> None:
    order: list[str] = []

    def flink(_settings, _topic, events, *, timeout, only_feature_sets=(), properties=None,
              per_set_sql=False) -> FlinkRun:
        order.append("sql" if per_set_sql else "all")
        return _flink_run(events, 40.0 if per_set_sql else 100.0, cpu=10.0)

    monkeypatch.setattr(throughput, "run_flink_bounded", flink)
    monkeypatch.setattr(throughput, "redis_forks", lambda _settings: 0)
    data = compare(SETTINGS, ENGAGEMENT, 1_000, repeat=2, peers=False, warmup=False, per_set_sql=True)
    assert order == ["all", "sql", "all", "sql"]
    assert data["runs"] == {"all_sets": [100.0, 100.0], "all_sets_per_set_sql": [40.0, 40.0]}
    assert data["families_vs_per_set_sql"] == 2.5
