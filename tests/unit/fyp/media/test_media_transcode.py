"""The one-process transcode on tiny lavfi sources: every rendition is checked with ffprobe, and the HLS and
DASH manifests must name them all. Sources are 0.5-3 s at 320x240 (one at 1079x1921), to stay fast."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from fyp.media.bench import synthesize, synthesize_vfr, with_rotation
from fyp.media.ladder import LadderPolicy, plan_ladder
from fyp.media.pipeline import Processed, Rejected, process_source
from fyp.media.probe import probe
from fyp.media.transcode import TranscodeError, TranscodeResult, transcode

CODEC_NAMES = {"h264": "h264", "h265": "hevc", "av1": "av1"}
MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def video_packets(path: Path) -> list[tuple[float, bool]]:
    """(pts seconds, is key frame) of every video packet."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
         "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    )
    return [(float(t), "K" in flags) for t, flags in (ln.split(",")[:2] for ln in out.stdout.split())]


def assemble(result: TranscodeResult, playlist: str, into: Path) -> Path:
    """init segment + media segments of one HLS media playlist, as one playable fMP4 file."""
    text = (result.out_dir / playlist).read_text()
    base = (result.out_dir / playlist).parent
    names = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text)
    names += [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    target = into / (Path(playlist).stem + ".mp4")
    target.write_bytes(b"".join((base / n).read_bytes() for n in names))
    return target


def verify(result: TranscodeResult, tmp: Path, *, fps: int = 30) -> list[dict[str, Any]]:
    """Check every rendition, the manifests, cover and posters; return each rendition's video stream."""
    master = (result.out_dir / result.hls_master).read_text()
    mpd = ET.parse(result.out_dir / result.dash_manifest).getroot()
    representations = mpd.findall(".//d:Representation", MPD_NS)
    video_reps = [r for r in representations if r.get("width")]
    assert len(video_reps) == len(result.renditions)
    streams = []
    key_frames = []
    for rendition in result.renditions:
        rung = rendition.rung
        assert Path(rendition.playlist).name in master
        assert f"RESOLUTION={rung.width}x{rung.height}" in master
        assert (str(rung.width), str(rung.height)) in {(r.get("width"), r.get("height")) for r in video_reps}
        playable = assemble(result, rendition.playlist, tmp)
        data = ffprobe(playable)
        video = next(s for s in data["streams"] if s["codec_type"] == "video")
        assert video["codec_name"] == CODEC_NAMES[rung.codec]
        assert (video["width"], video["height"]) == (rung.width, rung.height)
        assert not video.get("side_data_list"), "output must be upright, with no rotation left to apply"
        assert video["r_frame_rate"] == f"{fps}/1"
        packets = video_packets(playable)
        key_frames.append([t for t, key in packets if key])
        streams.append({**video, "packets": len(packets)})
    # 2 s GOPs, key frames at the same instants in every rendition: segments align for CMAF switching.
    assert all(times == key_frames[0] for times in key_frames)
    assert all(abs(t / 2 - round(t / 2)) < 0.02 for t in key_frames[0])
    cover = ffprobe(result.out_dir / result.cover)["streams"][0]
    top = result.renditions[0].rung
    assert (cover["width"], cover["height"]) == (top.width, top.height)
    assert result.posters and all((result.out_dir / p).is_file() for p in result.posters)
    return streams


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("sources")
    plain = synthesize(d / "plain.mp4", seconds=2, audio=False)
    with_audio = synthesize(d / "with_audio.mp4", seconds=3, audio=True)
    fast_start = synthesize(d / "faststart.mp4", seconds=2, extra_args=("-movflags", "+faststart"))
    data = fast_start.read_bytes()
    # Index first, media cut off: probing succeeds, decoding fails part-way.
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    odd = synthesize(
        d / "odd.mp4", seconds=0.5, width=540, height=960, audio=False,
        video_args=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"),
        extra_args=("-vf", "scale=1079:1921,setsar=1"),  # x264 4:4:4 takes odd sizes; 4:2:0 would not
    )
    return {
        "plain": plain,
        "with_audio": with_audio,
        "truncated": d / "truncated.mp4",
        "vfr": synthesize_vfr(d / "vfr.mp4"),
        "rotated": with_rotation(synthesize(d / "r.mp4", seconds=1, audio=False), d / "rotated.mp4", 90),
        "odd": odd,
    }


def run(source: Path, tmp: Path, **options: Any) -> Processed:
    outcome = process_source(source, tmp, **options)
    assert isinstance(outcome, Processed), outcome
    return outcome


def test_no_audio_track(sources: dict[str, Path], tmp_path: Path) -> None:
    progress: list[float] = []
    outcome = run(sources["plain"], tmp_path, on_progress=progress.append)
    result = outcome.result
    assert progress and all(0 <= f <= 1 for f in progress) and progress[-1] > 0.9
    assert [r.rung.codec for r in result.renditions] == ["h264", "h265", "av1"]
    verify(result, tmp_path)
    assert result.audio is None and outcome.fingerprint is None and outcome.music is None
    assert "TYPE=AUDIO" not in (result.out_dir / result.hls_master).read_text()
    mpd = ET.parse(result.out_dir / result.dash_manifest).getroot()
    assert [a.get("contentType") for a in mpd.findall(".//d:AdaptationSet", MPD_NS)] == ["video"] * 3
    assert 1900 <= result.duration_ms <= 2100


def test_audio_is_extracted_and_fingerprinted(sources: dict[str, Path], tmp_path: Path) -> None:
    outcome = run(sources["with_audio"], tmp_path)
    result = outcome.result
    verify(result, tmp_path)
    assert result.audio is not None
    audio = ffprobe(result.out_dir / result.audio)["streams"]
    assert [(s["codec_type"], s["codec_name"]) for s in audio] == [("audio", "aac")]
    assert outcome.fingerprint is not None and len(outcome.fingerprint.values) > 0
    master = (result.out_dir / result.hls_master).read_text()
    assert "TYPE=AUDIO" in master and "mp4a.40.2" in master
    mpd = ET.parse(result.out_dir / result.dash_manifest).getroot()
    assert "audio" in [a.get("contentType") for a in mpd.findall(".//d:AdaptationSet", MPD_NS)]


def test_variable_frame_rate_becomes_constant(sources: dict[str, Path], tmp_path: Path) -> None:
    assert probe(sources["vfr"]).variable_frame_rate
    outcome = run(sources["vfr"], tmp_path)
    for stream in verify(outcome.result, tmp_path, fps=30):
        assert stream["avg_frame_rate"] == "30/1"
        assert abs(stream["packets"] - 60) <= 1  # 2 s at a constant 30 fps


def test_rotated_phone_video_comes_out_upright(sources: dict[str, Path], tmp_path: Path) -> None:
    info = probe(sources["rotated"])
    # ffmpeg 5.1 stores `-metadata rotate=90` as a 90 degree counter-clockwise display matrix, which probe
    # reports as 270 clockwise; either way a quarter turn that swaps width and height.
    assert (info.width, info.height, info.rotation) == (320, 240, 270)
    outcome = run(sources["rotated"], tmp_path)
    streams = verify(outcome.result, tmp_path)
    # Coded 320x240 with a 90 degree display rotation: the output is coded 240x320 and needs no rotation.
    assert {(s["width"], s["height"]) for s in streams} == {(240, 320)}


def test_odd_resolution_is_scaled_down_to_even_rungs(sources: dict[str, Path], tmp_path: Path) -> None:
    info = probe(sources["odd"])
    assert (info.width, info.height) == (1079, 1921)
    # H.264 only: the 320x240 tests cover H.265 and AV1, and at 720x1282 they would double this test's time.
    outcome = run(sources["odd"], tmp_path, policy=LadderPolicy(extra_codecs={}))
    sizes = [(r.rung.width, r.rung.height) for r in outcome.result.renditions]
    assert sizes == [(720, 1282), (480, 854), (360, 640)]
    verify(outcome.result, tmp_path)


def test_truncated_upload_fails_as_corrupt(sources: dict[str, Path], tmp_path: Path) -> None:
    outcome = process_source(sources["truncated"], tmp_path)
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "corrupt"


def test_timeout_kills_ffmpeg(sources: dict[str, Path], tmp_path: Path) -> None:
    info = probe(sources["plain"])
    with pytest.raises(TranscodeError) as failure:
        transcode(sources["plain"], tmp_path / "out", info=info, ladder=plan_ladder(info), timeout_s=0.05)
    assert failure.value.reason == "transcode_timeout"

