"""Probe, sniffing and upload limits on tiny files made by ffmpeg: each refusal reason, the probed facts."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from fyp.media.bench import synthesize, synthesize_vfr, with_rotation
from fyp.media.probe import Limits, MediaInfo, check_limits, probe, sniff


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One of each kind of file, 1-2 s at 320x240 at most."""
    d = tmp_path_factory.mktemp("probe")
    files = {"good": synthesize(d / "good.mp4", seconds=2)}
    # ffmpeg writes the index (moov) at the end by default, so cutting the file loses it.
    data = files["good"].read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    files["truncated"] = d / "truncated.mp4"
    (d / "zero.mp4").write_bytes(b"")
    files["zero"] = d / "zero.mp4"
    (d / "random.mp4").write_bytes(random.Random(7).randbytes(4096))
    files["random"] = d / "random.mp4"
    # A real ftyp header followed by garbage: the container is recognised, the contents are not.
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    (d / "garbage.mp4").write_bytes(ftyp + random.Random(8).randbytes(4000))
    files["garbage"] = d / "garbage.mp4"
    (d / "notes.mp4").write_text("these are my holiday notes, not a video\n" * 20)
    files["text"] = d / "notes.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x64:d=1", "-frames:v", "1", str(d / "still.png"))
    files["png"] = d / "still.png"
    # One picture inside a QuickTime container: an accepted container holding something that is not a video.
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x64:d=1", "-frames:v", "1", "-c:v", "png", str(d / "s.mov"))
    files["still_in_mov"] = d / "s.mov"
    _ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(d / "song.m4a"))
    files["m4a"] = d / "song.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=d=1", str(d / "song.wav"))
    files["wav"] = d / "song.wav"
    files["mkv"] = synthesize(d / "clip.mkv", seconds=1, audio=False, video_args=("-c:v", "ffv1"))
    files["rotated"] = with_rotation(files["good"], d / "rotated.mp4", 90)
    files["vfr"] = synthesize_vfr(d / "vfr.mp4")
    return files


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("zero", "zero_bytes"),
        ("truncated", "corrupt"),
        ("garbage", "corrupt"),
        ("random", "not_a_video:unknown"),
        ("text", "not_a_video:text"),
        ("png", "not_a_video:image"),
        ("still_in_mov", "not_a_video:image"),
        ("m4a", "audio_only"),
        ("wav", "audio_only"),
    ],
)
def test_refused_files_get_a_reason(media: dict[str, Path], name: str, reason: str) -> None:
    assert check_limits(probe(media[name])) == reason


def test_good_file_passes_default_limits(media: dict[str, Path]) -> None:
    info = probe(media["good"])
    assert check_limits(info) is None
    assert (info.has_video, info.has_audio, info.video_codec, info.audio_codec) == (True, True, "h264", "aac")
    assert (info.width, info.height, info.display_width, info.display_height) == (320, 240, 320, 240)
    assert 1900 <= info.duration_ms <= 2100
    assert info.fps == 30 and not info.variable_frame_rate
    assert info.demuxer == "mov"


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        # Low limits stand in for long and large files: the checks are the same, the test stays fast.
        (Limits(max_duration_s=1.5), "too_long:2s"),
        (Limits(max_size_bytes=1000), "too_large:1MB"),
        (Limits(max_dimension=300), "resolution_too_high:320x240"),
    ],
)
def test_limits_are_enforced(media: dict[str, Path], limits: Limits, reason: str) -> None:
    assert check_limits(probe(media["good"]), limits) == reason


def test_rotation_swaps_display_size(media: dict[str, Path]) -> None:
    info = probe(media["rotated"])
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (320, 240)
    assert (info.display_width, info.display_height) == (240, 320)


def test_variable_frame_rate_is_flagged(media: dict[str, Path]) -> None:
    info = probe(media["vfr"])
    assert info.variable_frame_rate
    assert info.fps == 30 and 15 < info.avg_fps < 30


def test_matroska_is_probed_with_its_demuxer(media: dict[str, Path]) -> None:
    info = probe(media["mkv"])
    assert (info.sniffed.container, info.demuxer, info.video_codec) == ("matroska", "matroska", "ffv1")
    assert check_limits(info) is None


@pytest.mark.parametrize(
    ("head", "kind", "container"),
    [
        (b"\x00\x00\x00\x20ftypmp42", "video", "mov"),
        (b"\x00\x00\x00\x14ftypqt  ", "video", "mov"),
        (b"\x00\x00\x00\x08wide\x00\x00", "video", "mov"),
        (b"\x00\x00\x00\x18ftypheic", "image", None),
        (b"\x00\x00\x00\x1cftypavif", "image", None),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "video", "matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video", "avi"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio", None),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image", None),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image", None),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image", None),
        (b"GIF89a\x01\x00", "image", None),
        (b"ID3\x04\x00\x00", "audio", None),
        (b"#EXTM3U\n#EXT-X-VERSION:3\n", "text", None),
        (b"", "empty", None),
        (b"\x00\x01\x02\x03\xfe\xfd\xfc", "unknown", None),
    ],
)
def test_sniff(head: bytes, kind: str, container: str | None) -> None:
    found = sniff(head)
    assert (found.kind, found.container) == (kind, container)


def test_an_hls_playlist_upload_is_never_handed_to_ffprobe(tmp_path: Path) -> None:
    # ffmpeg's hls demuxer would open the files a playlist names; sniffing stops it before ffprobe runs.
    playlist = tmp_path / "evil.mp4"
    playlist.write_text("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\n/etc/passwd\n#EXT-X-ENDLIST\n")
    info = probe(playlist)
    assert not info.readable and info.demuxer is None
    assert check_limits(info) == "not_a_video:text"


def test_limits_validate_themselves() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Limits(max_duration_s=0)


def test_check_limits_orders_reasons() -> None:
    # Size is judged before anything needs decoding, so a huge file is refused without probing it further.
    info = MediaInfo(size_bytes=600_000_000, sniffed=sniff(b"\x89PNG\r\n\x1a\n"))
    assert check_limits(info) == "too_large:600MB"


def test_limits_from_the_environment() -> None:
    assert Limits.from_env({}) == Limits()
    limits = Limits.from_env({"FYP_UPLOAD_MAX_BYTES": "4000000", "FYP_UPLOAD_MAX_DURATION_S": "60.5",
                              "FYP_UPLOAD_MAX_DIMENSION": ""})
    assert (limits.max_size_bytes, limits.max_duration_s, limits.max_dimension) == (4_000_000, 60.5, 4096)
    with pytest.raises(ValueError, match="FYP_UPLOAD_MAX_BYTES"):
        Limits.from_env({"FYP_UPLOAD_MAX_BYTES": "lots"})
    with pytest.raises(ValueError, match="positive"):
        Limits.from_env({"FYP_UPLOAD_MAX_DURATION_S": "-1"})
