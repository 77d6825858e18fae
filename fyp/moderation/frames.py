"""Sample a few still frames from a video with ffmpeg, as RGB numpy arrays.

Every visual check (NSFW, OCR, PDQ) looks at the same few frames, so a video is decoded once. Frames are
spread over the whole video (not just its first seconds): the rate is `min(max_fps, max_frames / duration)`, but
never below `1 / duration`, and a clip the rate filter still gets nothing from gives its first frame: every clip
with a decodable frame yields at least one (a 0.3 s clip used to yield none, so no NSFW score and no PDQ
signature).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

import numpy as np

__all__ = ["FrameExtractionError", "FrameSampling", "probe_duration_s", "sample_frames"]


class FrameExtractionError(RuntimeError):
    """ffmpeg or ffprobe could not read the video; the message carries ffmpeg's own words."""


@dataclass(frozen=True, kw_only=True)
class FrameSampling:
    """How many frames to take from a video, and how large.

    max_fps: at most this many frames per second of video (default 1.0).
    max_frames: at most this many frames in all (default 8); longer videos are sampled more sparsely.
    max_side_px: frames are scaled down (never up) so that their longer side is at most this (default 640):
        PDQ works on 64x64 and open_nsfw on 224x224, and OCR of caption-sized text still works at 640.
    timeout_s: ffmpeg's wall-clock limit (default 60 s).

    >>> FrameSampling(max_frames=4).max_frames
    4
    """

    max_fps: float = 1.0
    max_frames: int = 8
    max_side_px: int = 640
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_fps <= 0:
            raise ValueError(f"max_fps must be > 0, got {self.max_fps}")
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.max_side_px < 16:
            raise ValueError(f"max_side_px must be >= 16, got {self.max_side_px}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    def rate_for(self, duration_s: float | None) -> float:
        """Frames per second to sample from a video of `duration_s` seconds (None: unknown).

        At least `1 / duration_s`: ffmpeg's fps filter (round=near) emits a frame only for an output instant the
        clip reaches within half an interval, so at 1 fps a clip under 0.5 s would yield none.

        >>> FrameSampling().rate_for(0.25), FrameSampling().rate_for(30.0)
        (4.0, 0.26666666666666666)
        """
        if not duration_s or duration_s <= 0:
            return self.max_fps
        return max(min(self.max_fps, self.max_frames / duration_s), 1.0 / duration_s)


def _run(argv: list[str], timeout_s: float) -> bytes:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FrameExtractionError(f"{argv[0]} took longer than {timeout_s} s") from exc
    if done.returncode != 0:
        raise FrameExtractionError(f"{argv[0]} failed: {done.stderr.decode(errors='replace').strip()[-500:]}")
    return done.stdout


def probe_duration_s(source: str | os.PathLike[str], *, timeout_s: float = 30.0) -> float | None:
    """The container's duration in seconds, or None when the container does not say."""
    out = _run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", os.fspath(source)],
        timeout_s,
    )
    raw = json.loads(out or b"{}").get("format", {}).get("duration")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _parse_ppm_stream(data: bytes) -> list[np.ndarray]:
    """Split ffmpeg's `image2pipe` PPM output: each image is `P6 <w> <h> 255` and w*h*3 bytes."""
    frames = []
    pos = 0
    while pos < len(data):
        fields: list[bytes] = []
        while len(fields) < 4:
            while data[pos : pos + 1].isspace():
                pos += 1
            end = pos
            while end < len(data) and not data[end : end + 1].isspace():
                end += 1
            fields.append(data[pos:end])
            pos = end
        if fields[0] != b"P6" or fields[3] != b"255":
            raise FrameExtractionError(f"unexpected PPM header {fields!r}")
        width, height = int(fields[1]), int(fields[2])
        pos += 1  # the single whitespace byte that ends the header
        size = width * height * 3
        frame = np.frombuffer(data, dtype=np.uint8, count=size, offset=pos).reshape(height, width, 3)
        frames.append(frame)
        pos += size
    return frames


def sample_frames(source: str | os.PathLike[str], sampling: FrameSampling | None = None) -> list[np.ndarray]:
    """Decode up to `sampling.max_frames` frames of `source` (a path or a URL ffmpeg can read).

    Returns HxWx3 uint8 RGB arrays (read-only views), in time order, rotation already applied by ffmpeg.
    Raises FrameExtractionError when ffmpeg cannot decode the source or finds no video frame.
    """
    sampling = sampling or FrameSampling()
    rate = sampling.rate_for(probe_duration_s(source, timeout_s=sampling.timeout_s))
    frames = _parse_ppm_stream(_run(_sample_argv(source, sampling, rate), sampling.timeout_s))
    if not frames:
        # The container's duration can overstate the frames (or be missing): take the first decodable frame,
        # so that no clip goes unscored for want of a sample.
        frames = _parse_ppm_stream(_run(_sample_argv(source, sampling, None), sampling.timeout_s))
    if not frames:
        raise FrameExtractionError(f"no video frame decoded from {os.fspath(source)!r}")
    return frames


def _sample_argv(source: str | os.PathLike[str], sampling: FrameSampling, rate: float | None) -> list[str]:
    """ffmpeg's argv: frames at `rate` per second, at most `max_frames`; rate None: the first frame only."""
    side = sampling.max_side_px
    # Scale down only, keeping the aspect ratio; PPM carries each frame's size, so that needs no probe.
    scale = (f"scale=w='min({side},iw)':h='min({side},ih)':force_original_aspect_ratio=decrease:"
             "force_divisible_by=2")
    video_filter = scale if rate is None else f"fps={rate:.6f}:round=near,{scale}"
    count = 1 if rate is None else sampling.max_frames
    return [
        *("ffmpeg", "-nostdin", "-v", "error", "-i", os.fspath(source)),
        *("-map", "0:v:0", "-an", "-sn", "-vf", video_filter, "-frames:v", str(count)),
        *("-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "pipe:1"),
    ]
