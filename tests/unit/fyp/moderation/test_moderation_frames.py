"""Frame sampling with ffmpeg on generated videos."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from fyp.moderation.frames import FrameExtractionError, FrameSampling, _parse_ppm_stream, sample_frames


def _make(path: Path, source: str, *extra: str) -> Path:
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, *extra]
    subprocess.run(
        [*argv, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True
    )
    return path


def test_one_frame_a_second_for_a_short_video(tmp_path: Path) -> None:
    video = _make(tmp_path / "v.mp4", "testsrc2=size=320x180:rate=10:duration=3")
    frames = sample_frames(video)
    assert len(frames) == 3
    assert all(f.shape == (180, 320, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[1])  # testsrc2 moves: the frames are different instants


def test_long_video_is_sampled_sparsely_up_to_the_cap(tmp_path: Path) -> None:
    # A frame counter in the picture: frame n is drawn with grey level 10 * n seconds.
    video = _make(
        tmp_path / "v.mp4",
        "color=c=black:size=64x64:rate=5:duration=20",
        "-vf",
        "geq=lum='10*T':cb=128:cr=128",
    )
    frames = sample_frames(video, FrameSampling(max_frames=4))
    assert len(frames) == 4
    levels = [int(f.mean()) for f in frames]
    assert levels == sorted(levels)
    assert levels[-1] - levels[0] >= 120  # spread over at least 12 of the 20 s, not the first 4


@pytest.mark.parametrize("duration", [0.04, 0.3, 0.45, 0.6])
def test_a_clip_shorter_than_a_sampling_interval_still_yields_a_frame(tmp_path: Path, duration: float) -> None:
    # Under 0.5 s, 1 fps sampling used to give no frame at all: no NSFW score and no PDQ signature.
    video = _make(tmp_path / "short.mp4", f"testsrc2=size=320x180:rate=25:duration={duration}")
    frames = sample_frames(video)
    assert len(frames) == 1 and frames[0].shape == (180, 320, 3)


def test_when_the_rate_filter_yields_nothing_the_first_frame_is_taken(tmp_path: Path, monkeypatch) -> None:
    # A rate too low for the clip (as a container that overstates its length would give) samples nothing; the
    # fallback then decodes the first frame rather than leaving the video unscored.
    video = _make(tmp_path / "short.mp4", "testsrc2=size=320x180:rate=25:duration=0.3")
    monkeypatch.setattr(FrameSampling, "rate_for", lambda self, duration: 0.001)
    frames = sample_frames(video)
    assert len(frames) == 1 and frames[0].shape == (180, 320, 3)


def test_frames_are_scaled_down_keeping_the_aspect_ratio(tmp_path: Path) -> None:
    video = _make(tmp_path / "portrait.mp4", "testsrc2=size=360x640:rate=5:duration=1")
    (frame,) = sample_frames(video, FrameSampling(max_side_px=320))
    assert frame.shape == (320, 180, 3)


def test_not_a_video_raises(tmp_path: Path) -> None:
    bogus = tmp_path / "x.mp4"
    bogus.write_bytes(b"definitely not a video")
    with pytest.raises(FrameExtractionError):
        sample_frames(bogus)


def test_ppm_stream_parsing() -> None:
    a = b"P6\n2 1\n255\n" + bytes(range(6))
    b = b"P6 1 2 255\n" + bytes(range(6, 12))
    first, second = _parse_ppm_stream(a + b)
    assert first.shape == (1, 2, 3) and first[0, 1].tolist() == [3, 4, 5]
    assert second.shape == (2, 1, 3) and second[1, 0].tolist() == [9, 10, 11]


@pytest.mark.parametrize(
    ("duration", "rate"),
    [(None, 1.0), (4.0, 1.0), (8.0, 1.0), (16.0, 0.5), (80.0, 0.1), (0.3, 1 / 0.3), (0.04, 25.0)],
)
def test_rate_for(duration: float | None, rate: float) -> None:
    assert FrameSampling().rate_for(duration) == pytest.approx(rate)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_fps": 0}, "max_fps"), ({"max_frames": 0}, "max_frames"), ({"max_side_px": 8}, "max_side_px")],
)
def test_sampling_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FrameSampling(**kwargs)
