"""`fyp bench upload`'s pure parts: the clip list and the per-second-of-source summary."""

from __future__ import annotations

import pytest

from fyp.bench.upload import Clip, parse_clips, summarize


def test_parse_clips() -> None:
    assert parse_clips(" 4:640x360,10.5:1079x1921 ,") == [Clip(4.0, 640, 360), Clip(10.5, 1079, 1921)]


@pytest.mark.parametrize("text", ["", "4", "4:640", "x:640x360", "0:640x360", "4:8x8"])
def test_parse_clips_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_clips(text)


def test_summary_is_per_second_of_source() -> None:
    samples = [
        {"duration_s": 2.0, "verdict_ms": 4000, "first_playable_ms": 2000, "full_ladder_ms": 2000, "ready_ms": 4100},
        {"duration_s": 10.0, "verdict_ms": 10000, "first_playable_ms": 8000, "full_ladder_ms": 8000,
         "ready_ms": 10100},
    ]
    summary = summarize(samples)
    # 2.0 and 1.0 s per source second; numpy's linear interpolation puts p50 between them.
    assert summary["verdict_s_per_source_s_p50"] == 1.5
    assert summary["verdict_s_per_source_s_p95"] == pytest.approx(1.95)
    assert (summary["first_playable_p50_ms"], summary["first_playable_p95_ms"]) == (5000, 7700)
    assert summary["full_ladder_s_per_source_s_p50"] == pytest.approx(0.9)


def test_summary_skips_points_never_reached() -> None:
    summary = summarize([{"duration_s": 2.0, "verdict_ms": None, "first_playable_ms": 1000,
                          "full_ladder_ms": 1000, "ready_ms": None}])
    assert "verdict_p50_ms" not in summary and summary["first_playable_p50_ms"] == 1000


def test_summary_reports_worker_cpu_per_source_second() -> None:
    summary = summarize([{"duration_s": 4.0, "transcoder_cpu_s": 8.0, "moderator_cpu_s": 1.0, "verdict_ms": 1},
                         {"duration_s": 2.0, "transcoder_cpu_s": 6.0, "verdict_ms": 1}])
    assert summary["transcoder_cpu_s_per_source_s_p50"] == 2.5
    assert summary["moderator_cpu_s_per_source_s_p50"] == 0.25


def test_summary_reports_cpu_per_transcode_stage() -> None:
    summary = summarize([{"duration_s": 4.0, "playable_stage_cpu_s": 2.0, "full_stage_cpu_s": 6.0, "verdict_ms": 1},
                         {"duration_s": 2.0, "playable_stage_cpu_s": 2.0, "verdict_ms": 1}])
    assert summary["playable_stage_cpu_s_per_source_s_p50"] == 0.75
    assert summary["full_stage_cpu_s_per_source_s_p50"] == summary["full_stage_cpu_s_per_source_s_p95"] == 1.5
