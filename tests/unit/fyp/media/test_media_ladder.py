"""Ladder planning and the ffmpeg argument list: pure functions, no ffmpeg run."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from fyp.media.ladder import Ladder, LadderPolicy, output_fps, plan_ladder
from fyp.media.probe import MediaInfo, sniff
from fyp.media.transcode import build_command, filter_graph, poster_frames

MP4 = sniff(b"\x00\x00\x00\x18ftypisom")


def info(width: int, height: int, fps: Fraction | int = 30, avg: Fraction | int | None = None, **kw):
    return MediaInfo(
        size_bytes=1,
        sniffed=MP4,
        readable=True,
        has_video=True,
        duration_ms=kw.pop("duration_ms", 10_000),
        display_width=width,
        display_height=height,
        fps=Fraction(fps),
        avg_fps=Fraction(fps if avg is None else avg),
        **kw,
    )


def sizes(ladder: Ladder, codec: str = "h264") -> list[tuple[int, int]]:
    return [(r.width, r.height) for r in ladder.rungs if r.codec == codec]


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1920, 1080, [(1920, 1080), (1280, 720), (854, 480), (640, 360)]),
        (1080, 1920, [(1080, 1920), (720, 1280), (480, 854), (360, 640)]),  # portrait: "1080p" is 1080 wide
        (1079, 1921, [(720, 1282), (480, 854), (360, 640)]),  # odd source: even outputs, no upscale to 1080
        (1280, 720, [(1280, 720), (854, 480), (640, 360)]),
        (3840, 2160, [(1920, 1080), (1280, 720), (854, 480), (640, 360)]),
        (320, 240, [(320, 240)]),  # below the smallest rung: one rung at its own size, never upscaled
        (321, 181, [(320, 180)]),
    ],
)
def test_h264_rungs(width: int, height: int, expected: list[tuple[int, int]]) -> None:
    ladder = plan_ladder(info(width, height))
    assert sizes(ladder) == expected
    assert all(w % 2 == 0 and h % 2 == 0 for r in ladder.rungs for w, h in [(r.width, r.height)])
    assert all(r.width <= max(width, height) and r.height <= max(width, height) for r in ladder.rungs)


def test_extra_codecs_only_on_top_rungs() -> None:
    ladder = plan_ladder(info(1080, 1920), LadderPolicy(extra_codecs={"h265": 2, "av1": 1}))
    assert sizes(ladder, "h265") == [(1080, 1920), (720, 1280)]
    assert sizes(ladder, "av1") == [(1080, 1920)]
    assert [r.encoder for r in ladder.rungs if r.codec == "av1"] == ["libsvtav1"]
    assert plan_ladder(info(1920, 1080), LadderPolicy(extra_codecs={})).rungs[-1].codec == "h264"


def test_tiny_pictures_get_h264_only() -> None:
    ladder = plan_ladder(info(160, 120))
    assert [r.codec for r in ladder.rungs] == ["h264"]


def test_bitrate_is_pixels_times_fps_times_bpp() -> None:
    ladder = plan_ladder(info(1280, 720, fps=30))
    top = ladder.rungs[0]
    assert top.bitrate_kbps == round(1280 * 720 * 30 * 0.11 / 1000)  # PeerTube's 0.11 bpp at 720p
    assert top.maxrate_kbps == round(1280 * 720 * 30 * 0.19 / 1000)
    h265 = next(r for r in ladder.rungs if r.codec == "h265")
    assert h265.bitrate_kbps == round(top.bitrate_kbps * 0.6)
    p360 = next(r for r in ladder.rungs if r.short_side == 360)
    assert p360.bitrate_kbps == round(640 * 360 * 30 * 0.15 / 1000)


@pytest.mark.parametrize(
    ("fps", "avg", "expected"),
    [
        (30, 30, Fraction(30)),
        (Fraction(30000, 1001), Fraction(30000, 1001), Fraction(30000, 1001)),
        (Fraction(2997, 100), Fraction(2997, 100), Fraction(30000, 1001)),  # snapped to the broadcast rate
        (30, Fraction(45, 2), Fraction(30)),  # variable rate: the nominal rate
        (120, 120, Fraction(60)),  # capped
        (90000, 29, Fraction(29)),  # a nonsense nominal rate: the average instead
        (90000, 100, Fraction(60)),  # ... capped
        (0, 0, Fraction(30)),  # unknown
        (17, 17, Fraction(17)),
    ],
)
def test_output_fps(fps: Fraction | int, avg: Fraction | int, expected: Fraction) -> None:
    assert output_fps(info(640, 360, fps=fps, avg=avg)) == expected


def test_gop_is_two_seconds() -> None:
    assert plan_ladder(info(640, 360, fps=30)).gop_frames == 60
    assert plan_ladder(info(640, 360, fps=Fraction(30000, 1001))).gop_frames == 60


def test_policy_validates_itself() -> None:
    with pytest.raises(ValueError, match="largest first"):
        LadderPolicy(heights=(360, 720))
    with pytest.raises(ValueError, match="even"):
        LadderPolicy(heights=(721,))
    with pytest.raises(ValueError, match="h265 and av1"):
        LadderPolicy(extra_codecs={"vp9": 1})  # type: ignore[dict-item]


def test_poster_frames() -> None:
    assert poster_frames(10_000, Fraction(30)) == (30, (37, 112, 187, 262))
    cover, posters = poster_frames(500, Fraction(30))  # shorter than a second: the cover is mid-clip
    assert cover == 7 and all(p < 15 for p in posters)


def test_filter_graph_decodes_once_and_splits() -> None:
    ladder = plan_ladder(info(1080, 1920))
    graph = filter_graph(ladder, cover_frame=30, posters=(10, 20))
    assert graph.count("[0:v:0]") == 1
    assert f"split={len(ladder.rungs) + 2}" in graph
    assert "fps=30," in graph and "format=yuv420p" in graph
    for i, rung in enumerate(ladder.rungs):
        assert f"scale={rung.width}:{rung.height}," in graph and f"[v{i}]" in graph
    assert "setdar=dar=1080/1920" in graph


def test_command_aligns_key_frames_and_writes_cmaf_for_hls_and_dash() -> None:
    source = info(1280, 720, has_audio=True)
    ladder = plan_ladder(source)
    argv = build_command(Path("/in/source"), Path("/out"), info=source, ladder=ladder)
    joined = " ".join(argv)
    assert argv.count("-i") == 1  # one process, one decode
    assert argv[argv.index("-f") + 1] == "mov"  # the sniffed demuxer is forced
    assert "-protocol_whitelist file" in joined
    for i, rung in enumerate(ladder.rungs):
        assert f"-c:v:{i} {rung.encoder}" in joined
        assert f"-g:v:{i} 60" in joined and f"-keyint_min:v:{i} 60" in joined
    assert "-sc_threshold:v:0 0" in joined
    assert "open-gop=0" in joined and "scenecut=0" in joined  # x265
    assert "-force_key_frames expr:gte(t,n_forced*2)" in joined
    assert "-f dash" in joined and "-hls_playlist 1" in joined and "-seg_duration 2" in joined
    sets = argv[argv.index("-adaptation_sets") + 1]
    assert sets == "id=0,streams=0,1,2 id=1,streams=3 id=2,streams=4 id=3,streams=a"  # one set per codec
    assert argv[argv.index("-f", argv.index("-f") + 1) - 1] != "dash"
    assert "/out/stream/manifest.mpd" in argv and "/out/cover.jpg" in argv and "/out/audio.m4a" in argv


def test_command_without_audio_maps_no_audio() -> None:
    source = info(320, 240)
    argv = build_command(Path("/in/source"), Path("/out"), info=source, ladder=plan_ladder(source))
    assert "0:a:0" not in argv and "/out/audio.m4a" not in argv
    assert argv[argv.index("-adaptation_sets") + 1] == "id=0,streams=0 id=1,streams=1 id=2,streams=2"


def test_command_reads_the_probed_video_stream_not_cover_art() -> None:
    source = info(320, 240, video_index=2)  # e.g. stream 0 is an attached cover picture
    argv = build_command(Path("/in/source"), Path("/out"), info=source, ladder=plan_ladder(source))
    graph = argv[argv.index("-filter_complex") + 1]
    assert graph.startswith("[0:2]fps=30,")
