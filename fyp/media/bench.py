"""Synthetic sources (for tests and benchmarks) and the ladder benchmark behind `fyp bench upload`.

The benchmark compares our single-decode ladder (one ffmpeg: decode once, `split`, scale and encode each rung)
with PeerTube's pattern (one ffmpeg run per resolution, each decoding the whole source again), both with x264
veryfast and the same bitrates, on a lavfi test source (testsrc2 + sine).
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fyp.media.ladder import Ladder, LadderPolicy, plan_ladder
from fyp.media.probe import probe
from fyp.media.transcode import poster_frames, transcode

__all__ = ["per_rendition_commands", "run_ladder_benchmark", "synthesize", "synthesize_vfr", "with_rotation"]


def synthesize(
    path: Path,
    *,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    fps: int | str = 30,
    audio: bool = True,
    video_args: Sequence[str] = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
    extra_args: Sequence[str] = (),
) -> Path:
    """Write a lavfi test clip: testsrc2 video (+ a 440 Hz sine when `audio`), `seconds` long.

    video_args: encoder options (default x264 ultrafast, 4:2:0). extra_args: options before the output name.
    """
    args = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi"]
    args += ["-i", f"testsrc2=s={width}x{height}:r={fps}:d={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=f=440:sample_rate=48000:d={seconds}", "-c:a", "aac", "-shortest"]
    args += [*video_args, *extra_args, str(path)]
    subprocess.run(args, check=True, capture_output=True)
    return path


def synthesize_vfr(
    path: Path, *, width: int = 320, height: int = 240, rates: Sequence[int] = (15, 30)
) -> Path:
    """A variable-frame-rate clip: one second at each of `rates`, concatenated, timestamps kept."""
    args = ["ffmpeg", "-v", "error", "-nostdin", "-y"]
    for rate in rates:
        args += ["-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={rate}:d=1"]
    inputs = "".join(f"[{i}:v]" for i in range(len(rates)))
    args += ["-filter_complex", f"{inputs}concat=n={len(rates)}:v=1[v]", "-map", "[v]"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-fps_mode", "vfr", str(path)]
    subprocess.run(args, check=True, capture_output=True)
    return path


def with_rotation(source: Path, path: Path, degrees: int = 90) -> Path:
    """Copy `source` with a display rotation, as phones write portrait clips (ffmpeg 5.1: `rotate` tag)."""
    args = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(source), "-c", "copy"]
    args += ["-metadata:s:v:0", f"rotate={degrees}", str(path)]
    subprocess.run(args, check=True, capture_output=True)
    return path


def per_rendition_commands(
    source: Path, out_dir: Path, ladder: Ladder, *, segment_s: int = 4
) -> list[list[str]]:
    """PeerTube-style: one ffmpeg per H.264 rung (decode, scale, encode, HLS fMP4), then one for a thumbnail.

    PeerTube uses 4 s HLS segments (`segment_s`); bitrates and GOP are ours, so only the structure differs.
    """
    commands = []
    gop = str(ladder.gop_frames)
    for rung in (r for r in ladder.rungs if r.codec == "h264"):
        target = out_dir / rung.name
        target.mkdir(parents=True, exist_ok=True)
        commands.append([
            "ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(source),
            "-vf", f"fps={ladder.fps},scale={rung.width}:{rung.height},format=yuv420p",
            "-c:v", "libx264", "-preset", rung.preset, "-profile:v", "high",
            "-b:v", f"{rung.bitrate_kbps}k", "-maxrate", f"{rung.maxrate_kbps}k",
            "-bufsize", f"{2 * rung.maxrate_kbps}k", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
            "-c:a", "aac", "-b:a", "128k",
            "-f", "hls", "-hls_time", str(segment_s), "-hls_playlist_type", "vod",
            "-hls_segment_type", "fmp4", str(target / "index.m3u8"),
        ])
    cover, _ = poster_frames(10_000, ladder.fps)
    commands.append([
        "ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(source),
        "-vf", f"select='eq(n\\,{cover})'", "-frames:v", "1", "-q:v", "3", str(out_dir / "cover.jpg"),
    ])
    return commands


# The worker's watchdog (60 s + 20x the clip) is for production; on a loaded machine a benchmark run may take
# longer and must still finish.
_NO_WATCHDOG_S = 3600.0

_SOURCE_ENCODERS = {
    "h264": ("-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"),
    # What phones record: HEVC at ~12 Mbit/s for 1080p30. Decoding it costs ~2.7x H.264 (measured here:
    # 2.6 vs 0.97 CPU s for 10 s of 1080p), which each per-rendition run pays again.
    "hevc": ("-c:v", "libx265", "-preset", "ultrafast", "-b:v", "12M", "-pix_fmt", "yuv420p", "-tag:v", "hvc1",
             "-x265-params", "log-level=error"),
}


def run_ladder_benchmark(
    source_seconds: float = 10, height: int = 1080, faster_presets: Sequence[str] = ("superfast", "ultrafast"),
    source_codec: str = "h264",
) -> dict[str, Any]:
    """Time (a) the single-decode ladder, H.264 only and with H.265 + AV1 top rungs, and (b) one ffmpeg run
    per H.264 rendition, on a `height`p30 16:9 lavfi source `source_seconds` long. Then (c) the H.264-only
    single-decode ladder again with each of `faster_presets` for x264 (same bitrates): what reaching
    0.5x real time would cost in preset; (d) all codecs at their fast end (x264 superfast, x265 ultrafast,
    SVT-AV1 preset 12).

    source_codec: `h264` (x264 veryfast CRF 18) or `hevc` (x265 at 12 Mbit/s, like a phone's recording).

    Returns a flat dict: each variant's wall seconds (`*_s`), wall seconds per source second (`*_ratio`) and
    CPU seconds (`*_cpu_s`), and `speedup_h264` / `speedup_h264_cpu` = (b) / (a, H.264 only). Wall time
    needs an otherwise idle machine; `load_average_1m` (before, after) says how idle it was.
    """
    width = 2 * round(height * 16 / 9 / 2)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fyp-bench-") as tmp:
        work = Path(tmp)
        source = synthesize(
            work / "source.mp4",
            seconds=source_seconds,
            width=width,
            height=height,
            video_args=_SOURCE_ENCODERS[source_codec],
        )
        info = probe(source)
        h264_only = plan_ladder(info, LadderPolicy(extra_codecs={}))
        all_codecs = plan_ladder(info)

        with _timer() as single_h264:
            transcode(source, work / "a_h264", info=info, ladder=h264_only, timeout_s=_NO_WATCHDOG_S)
        with _timer() as single_all:
            transcode(source, work / "a_all", info=info, ladder=all_codecs, timeout_s=_NO_WATCHDOG_S)
        with _timer() as per_rendition:
            for command in per_rendition_commands(source, work / "b", h264_only):
                subprocess.run(command, check=True, capture_output=True)
        faster = {}
        for preset in faster_presets:
            policy = LadderPolicy(extra_codecs={}, presets={"h264": preset, "h265": "veryfast", "av1": "10"})
            with _timer() as faster[f"single_decode_h264_{preset}"]:
                transcode(source, work / f"c_{preset}", info=info, ladder=plan_ladder(info, policy),
                          timeout_s=_NO_WATCHDOG_S)
        # (d) every codec at its fast end: where the H.265 + AV1 top rung's cost could go.
        fast_all = LadderPolicy(presets={"h264": "superfast", "h265": "ultrafast", "av1": "12"})
        with _timer() as faster["single_decode_all_codecs_fast"]:
            transcode(source, work / "d", info=info, ladder=plan_ladder(info, fast_all), timeout_s=_NO_WATCHDOG_S)

    timings = {"single_decode_h264": single_h264, "single_decode_all_codecs": single_all,
               "per_rendition_h264": per_rendition, **faster}
    result: dict[str, Any] = {
        "source": f"{width}x{height}p30 {source_codec}, {source_seconds:g} s, testsrc2 + sine",
        "cores": os.cpu_count(),
        "h264_rungs": [r.name for r in h264_only.rungs],
        "all_codec_rungs": [r.name for r in all_codecs.rungs],
        "load_average_1m": (round(load_before, 2), round(os.getloadavg()[0], 2)),
    }
    for name, (wall, cpu) in ((k, v[0]) for k, v in timings.items()):
        result[f"{name}_s"] = round(wall, 2)
        result[f"{name}_ratio"] = round(wall / source_seconds, 2)
        result[f"{name}_cpu_s"] = round(cpu, 2)
    result["speedup_h264"] = round(per_rendition[0][0] / single_h264[0][0], 2)
    result["speedup_h264_cpu"] = round(per_rendition[0][1] / single_h264[0][1], 2)
    return result


@contextmanager
def _timer() -> Iterator[list[tuple[float, float]]]:
    """Yields a list that receives (wall seconds, CPU seconds of finished child processes) on exit.

    CPU time is the steadier figure on a shared machine: other tenants stretch wall time, not our CPU time.
    """
    box: list[tuple[float, float]] = []
    wall, cpu = time.monotonic(), _children_cpu()
    yield box
    box.append((time.monotonic() - wall, _children_cpu() - cpu))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
