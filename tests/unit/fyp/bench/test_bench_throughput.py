"""`compare`: rounds in order, medians per contestant, ratios of medians (the runs themselves are stubbed)."""

from __future__ import annotations

import itertools

from fyp.bench import throughput
from fyp.bench.peers import runner
from fyp.bench.throughput import FlinkRun, compare
from schemas.topics import ENGAGEMENT

SETTINGS = object()  # passed through to the stubbed runs, never read


def test_rounds_interleave_and_figures_are_medians(monkeypatch) -> None:
    order: list[str] = []
    all_sets, video_only = iter([10.0, 30.0, 20.0]), iter([100.0, 90.0, 300.0])
    peers = {"quix": iter([10.0, 12.0, 11.0]), "naive": iter([20.0, 25.0, 30.0])}

    def flink(_settings, _topic, events, *, timeout, only_feature_sets=(), properties=None) -> FlinkRun:
        order.append("video" if only_feature_sets else "all")
        rate = next(video_only if only_feature_sets else all_sets)
        return FlinkRun(events=events, seconds=events / rate, events_per_s=rate, job_id="j")

    def peer(name, _settings, *, events, group_id, timeout_s, topic) -> dict:
        order.append(name)
        assert group_id.startswith(f"bench-{name}-")
        return {"events_per_s": next(peers[name])}

    def forks(_settings) -> int:  # Redis starts one snapshot during the second round's all-sets run
        return 5 + (order.count("all") >= 2)

    monkeypatch.setattr(throughput, "run_flink_bounded", flink)
    monkeypatch.setattr(runner, "run_peer", peer)
    monkeypatch.setattr(throughput, "_redis_forks", forks)
    data = compare(SETTINGS, ENGAGEMENT, 1_000, repeat=3, warmup=False)
    assert order == list(itertools.chain.from_iterable(["all", "video", "quix", "naive"] for _ in range(3)))
    assert data["runs"] == {"all_sets": [10.0, 30.0, 20.0], "video_only": [100.0, 90.0, 300.0],
                            "quix": [10.0, 12.0, 11.0], "naive": [20.0, 25.0, 30.0]}
    assert (data["events_per_s"], data["video_only_events_per_s"]) == (20.0, 100.0)
    assert (data["quix_events_per_s"], data["naive_events_per_s"]) == (11.0, 25.0)
    assert (data["flink_vs_quix"], data["flink_vs_naive"]) == (9.09, 4.0)
    assert data["flink_seconds"] == 50.0  # median of 100, 33.3, 50
    assert data["redis_snapshots"] == {"all_sets": [0, 1, 0], "video_only": [0, 0, 0], "quix": [0, 0, 0],
                                       "naive": [0, 0, 0]}


def test_without_peers_only_the_job_runs(monkeypatch) -> None:
    monkeypatch.setattr(throughput, "run_flink_bounded", lambda *a, **k: FlinkRun(
        events=10, seconds=1.0, events_per_s=10.0, job_id="j"))
    monkeypatch.setattr(throughput, "_redis_forks", lambda _settings: 0)
    data = compare(SETTINGS, ENGAGEMENT, 10, peers=False, warmup=False)
    assert data == {"events_per_s": 10.0, "flink_seconds": 1.0, "repeat": 1, "runs": {"all_sets": [10.0]},
                    "redis_snapshots": {"all_sets": [0]}}


def test_the_warmup_run_comes_first_and_is_not_counted(monkeypatch) -> None:
    rates = iter([5.0, 10.0, 30.0])

    def flink(*_args, **_kwargs) -> FlinkRun:
        rate = next(rates)
        return FlinkRun(events=10, seconds=10 / rate, events_per_s=rate, job_id="j")

    monkeypatch.setattr(throughput, "run_flink_bounded", flink)
    monkeypatch.setattr(throughput, "_redis_forks", lambda _settings: 0)
    data = compare(SETTINGS, ENGAGEMENT, 10, repeat=2, peers=False)
    assert (data["warmup_events_per_s"], data["runs"]["all_sets"], data["events_per_s"]) == (5.0, [10.0, 30.0], 20.0)
