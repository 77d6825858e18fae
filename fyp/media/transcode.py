"""One ffmpeg process turns a source into the whole ladder, a cover, posters and the extracted audio.

The source is decoded once. The filter graph resamples it to a constant frame rate (`fps`, which also makes
variable-frame-rate phone clips regular), converts it to 8-bit 4:2:0, then `split`s it: one branch per rung
with its own `scale`, plus two `select` branches for the cover and poster JPEGs. Rotation needs no filter of
ours: ffmpeg's autorotate (on by default) turns frames upright before our graph, and filter-graph outputs
carry no display matrix, so players do not rotate them again (tests check both).

`mute_audio=True` keeps the audio streams but filters them through `volume=0`: the same AAC stream, segments and
manifests, so players see the same structure, with digital silence in it (a catalogue track whose decision is
`mute`, docs/MODERATION.md "Mute").

`video_only=True` leaves out the cover, posters and audio: the second stage of a two-stage ladder
(`fyp.media.ladder.stage_ladder`, "extra": H.265/AV1 rungs added to an already published H.264 set, whose
audio and pictures it reuses). Its segments align with the first stage's (same frame rate, same forced key
frames), and `fyp.media.manifests` composes the two stages' manifests into one.

The renditions are written by ffmpeg's `dash` muxer with `hls_playlist=1`: one set of CMAF fMP4 segments
(init + 2 s media segments per rendition) described both by `manifest.mpd` (DASH) and by `master.m3u8` plus
`media_<i>.m3u8` (HLS). Checked on Debian ffmpeg 5.1.

The argument list is built by small pure functions rather than with ffmpeg-python: the per-stream options
(`-c:v:3`, `-b:v:3`...) and the dash muxer's `adaptation_sets`, which names streams by output index, need the
exact order of the `-map`s, which ffmpeg-python's graph builder does not let us state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from fyp.media.ladder import Ladder, Rung
from fyp.media.probe import MediaInfo

__all__ = [
    "OutputLayout",
    "RenditionOutput",
    "TranscodeError",
    "TranscodeResult",
    "build_command",
    "filter_graph",
    "poster_frames",
    "transcode",
]

STREAM_DIR = "stream"
AUDIO_BITRATE_KBPS = 128
_CORRUPT_MARKERS = ("partial file", "invalid data found", "corrupt", "error while decoding", "invalid nal")


class TranscodeError(RuntimeError):
    """ffmpeg failed; `reason` is a machine string: `corrupt`, `transcode_failed` or `transcode_timeout`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, kw_only=True)
class OutputLayout:
    """File names inside the output directory, all relative to it."""

    dash_manifest: str = f"{STREAM_DIR}/manifest.mpd"
    hls_master: str = f"{STREAM_DIR}/master.m3u8"
    cover: str = "cover.jpg"
    poster_pattern: str = "posters/poster_%02d.jpg"
    audio: str = "audio.m4a"
    log: str = "ffmpeg.log"

    def media_playlist(self, stream_index: int) -> str:
        return f"{STREAM_DIR}/media_{stream_index}.m3u8"


@dataclass(frozen=True, kw_only=True)
class RenditionOutput:
    """A rung as written: its HLS media playlist (relative path) and its stream index in the DASH manifest."""

    rung: Rung
    stream_index: int
    playlist: str


@dataclass(frozen=True, kw_only=True)
class TranscodeResult:
    """Everything one transcode wrote under `out_dir` (paths relative to it) and how long it took."""

    out_dir: Path
    renditions: tuple[RenditionOutput, ...]
    hls_master: str
    dash_manifest: str
    cover: str | None  # None for a video-only run
    posters: tuple[str, ...]
    audio: str | None
    duration_ms: int
    elapsed_ms: int

    def files(self) -> list[Path]:
        """Every file to publish (the ffmpeg log stays behind)."""
        return sorted(p for p in self.out_dir.rglob("*") if p.is_file() and p.name != OutputLayout().log)


def poster_frames(duration_ms: int, fps: Fraction, count: int = 4) -> tuple[int, tuple[int, ...]]:
    """Frame numbers (at the output rate) of the cover, at ~1 s or mid-clip if shorter, and of `count` posters
    spread at 1/(2n), 3/(2n)... of the clip.

    >>> poster_frames(10_000, Fraction(30), 4)
    (30, (37, 112, 187, 262))
    """
    frames = max(1, int(duration_ms * fps / 1000))
    cover = min(int(fps), frames // 2)
    posters = tuple(sorted({min(frames - 1, (2 * i + 1) * frames // (2 * count)) for i in range(count)}))
    return cover, posters


def filter_graph(
    ladder: Ladder, *, cover_frame: int, posters: Sequence[int], video_input: str = "0:v:0",
    stills: bool = True,
) -> str:
    """The `-filter_complex` text: fps + format once, split, a scale per rung, select for cover and posters.

    Outputs are labelled [v0]..[vN-1] for the rungs, [cover] and [posters] (unless `stills` is False).
    """
    n = len(ladder.rungs)
    branches = "".join(f"[s{i}]" for i in range(n)) + ("[sc][sp]" if stills else "")
    parts = [f"[{video_input}]fps={ladder.fps},format=yuv420p,split={n + 2 if stills else n}{branches}"]
    top = ladder.top
    # Even rounding leaves rungs a hair off each other's aspect ratio (480x852 vs 1080x1920), and the dash
    # muxer refuses an adaptation set whose aspect ratios differ; one display aspect ratio for all, carried by
    # a sample aspect ratio within 0.5% of square, satisfies it without visible distortion.
    dar = f"setdar=dar={top.width}/{top.height}:max=65535"  # max: keep the ratio exact, the top rung square
    parts += [f"[s{i}]scale={r.width}:{r.height},{dar}[v{i}]" for i, r in enumerate(ladder.rungs)]
    if not stills:
        return ";".join(parts)
    parts.append(f"[sc]select='eq(n\\,{cover_frame})',scale={top.width}:{top.height},setsar=1[cover]")
    picks = "+".join(f"eq(n\\,{f})" for f in posters)
    parts.append(f"[sp]select='{picks}',scale={top.width}:{top.height},setsar=1[posters]")
    return ";".join(parts)


def _encoder_args(index: int, rung: Rung, ladder: Ladder) -> list[str]:
    """Per-stream encoder options. Key frames on every segment boundary, scene cuts and open GOPs off,
    in each encoder's own dialect, so segments align across rungs and codecs."""
    gop = str(ladder.gop_frames)
    spec = f"v:{index}"
    args = [
        "-map", f"[v{index}]",
        f"-c:{spec}", rung.encoder,
        f"-preset:{spec}", rung.preset,
        f"-b:{spec}", f"{rung.bitrate_kbps}k",
        f"-maxrate:{spec}", f"{rung.maxrate_kbps}k",
        f"-bufsize:{spec}", f"{2 * rung.maxrate_kbps}k",
        f"-g:{spec}", gop,
        f"-keyint_min:{spec}", gop,
    ]
    if rung.codec == "h264":
        args += [f"-profile:{spec}", "high", f"-sc_threshold:{spec}", "0"]
    elif rung.codec == "h265":
        # hvc1 (parameter sets in the init segment) is the tag Apple's HLS players require for HEVC in fMP4.
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:log-level=error"
        args += [f"-tag:{spec}", "hvc1", f"-x265-params:{spec}", params, f"-forced-idr:{spec}", "1"]
    elif rung.codec == "av1":
        args += [f"-svtav1-params:{spec}", f"keyint={gop}:scd=0"]
    return args


def build_command(
    source: Path,
    out_dir: Path,
    *,
    info: MediaInfo,
    ladder: Ladder,
    layout: OutputLayout = OutputLayout(),
    ffmpeg_bin: str = "ffmpeg",
    video_only: bool = False,
    mute_audio: bool = False,
) -> list[str]:
    """The full ffmpeg argv for one source (pure: nothing is run or created). video_only: renditions only,
    no audio, cover or posters. mute_audio: every audio output is silence of the same length and format."""
    cover, posters = poster_frames(info.duration_ms, ladder.fps)
    args = [ffmpeg_bin, "-hide_banner", "-nostdin", "-y", "-v", "error", "-nostats", "-progress", "pipe:1"]
    # -xerror: a decode error (a truncated upload whose index survived) fails the job instead of publishing a
    # video that stops short.
    args += ["-xerror", "-protocol_whitelist", "file"]
    if info.demuxer:
        args += ["-f", info.demuxer]
    video_input = "0:v:0" if info.video_index is None else f"0:{info.video_index}"
    graph = filter_graph(ladder, cover_frame=cover, posters=posters, video_input=video_input,
                         stills=not video_only)
    has_audio = info.has_audio and not video_only
    args += ["-i", str(source), "-filter_complex", graph]
    for index, rung in enumerate(ladder.rungs):
        args += _encoder_args(index, rung, ladder)
    # Key frames at exact segment times; the encoders' -g alone drifts when the frame rate is fractional.
    args += ["-force_key_frames", f"expr:gte(t,n_forced*{ladder.segment_s})"]
    # An output's own simple filter on a stream mapped from the input: the -filter_complex graph stays video-only.
    silence = ["-af", "volume=0"] if mute_audio else []
    if has_audio:
        args += ["-map", "0:a:0", *silence, "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_KBPS}k", "-ac", "2",
                 "-ar", "48000"]
    args += _dash_args(ladder, has_audio=has_audio)
    args.append(str(out_dir / layout.dash_manifest))
    if video_only:
        return args
    args += ["-map", "[cover]", "-fps_mode", "passthrough", "-frames:v", "1", "-q:v", "3", "-update", "1"]
    args.append(str(out_dir / layout.cover))
    args += ["-map", "[posters]", "-fps_mode", "passthrough", "-q:v", "3"]
    args.append(str(out_dir / layout.poster_pattern))
    if info.has_audio:
        args += ["-map", "0:a:0", "-vn", *silence, "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_KBPS}k", "-ac", "2"]
        args += ["-movflags", "+faststart", str(out_dir / layout.audio)]
    return args


def _dash_args(ladder: Ladder, *, has_audio: bool) -> list[str]:
    """dash muxer options: one adaptation set per video codec (DASH forbids mixing codecs within one), then
    audio; HLS playlists over the same segments."""
    sets: list[str] = []
    for codec in dict.fromkeys(r.codec for r in ladder.rungs):
        indices = ",".join(str(i) for i, r in enumerate(ladder.rungs) if r.codec == codec)
        sets.append(f"id={len(sets)},streams={indices}")
    if has_audio:
        sets.append(f"id={len(sets)},streams=a")
    return [
        "-f", "dash",
        "-seg_duration", str(ladder.segment_s),
        "-use_template", "1",
        "-use_timeline", "1",
        "-hls_playlist", "1",
        "-adaptation_sets", " ".join(sets),
        "-init_seg_name", "init_$RepresentationID$.m4s",
        "-media_seg_name", "seg_$RepresentationID$_$Number%05d$.m4s",
    ]


def transcode(
    source: Path,
    out_dir: Path,
    *,
    info: MediaInfo,
    ladder: Ladder,
    timeout_s: float | None = None,
    on_progress: Callable[[float], None] | None = None,
    video_only: bool = False,
    mute_audio: bool = False,
) -> TranscodeResult:
    """Run the one ffmpeg process; return what it wrote, or raise `TranscodeError`.

    timeout_s: wall-clock limit (default 60 s + 20x the clip length). on_progress: called with 0..1 as
    ffmpeg reports its position. video_only: renditions only; mute_audio: silent audio (see `build_command`).
    """
    layout = OutputLayout()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    for sub in (STREAM_DIR, str(Path(layout.poster_pattern).parent)):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    argv = build_command(source, out_dir, info=info, ladder=ladder, layout=layout, video_only=video_only,
                         mute_audio=mute_audio)
    limit = timeout_s if timeout_s is not None else 60 + 20 * info.duration_ms / 1000
    started = time.monotonic()
    # SVT-AV1 prints its banner to stdout unless told otherwise; level 1 = errors only.
    env = {**os.environ, "SVT_LOG": "1"}
    with (out_dir / layout.log).open("wb") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, env=env, text=True)
        # A timer, not a read timeout: a stuck ffmpeg stops writing progress lines, so reading would block.
        timed_out = threading.Event()
        watchdog = threading.Timer(limit, lambda: (timed_out.set(), proc.kill()))
        watchdog.start()
        try:
            _follow_progress(proc, info.duration_ms, on_progress)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    elapsed_ms = round((time.monotonic() - started) * 1000)
    if proc.returncode != 0:
        detail = (out_dir / layout.log).read_text(errors="replace").strip()
        raise TranscodeError(_failure_reason(detail, timed_out=timed_out.is_set()), detail[-2000:])
    return _result(out_dir, layout, info=info, ladder=ladder, elapsed_ms=elapsed_ms, video_only=video_only)


def _follow_progress(
    proc: subprocess.Popen[str], duration_ms: int, on_progress: Callable[[float], None] | None
) -> None:
    """Read `-progress` key=value lines until ffmpeg closes its stdout."""
    assert proc.stdout is not None
    for line in proc.stdout:
        key, _, value = line.strip().partition("=")
        if on_progress and key == "out_time_us" and value.isdigit() and duration_ms > 0:
            on_progress(min(1.0, int(value) / 1000 / duration_ms))


def _failure_reason(log: str, *, timed_out: bool) -> str:
    if timed_out:
        return "transcode_timeout"
    lowered = log.lower()
    return "corrupt" if any(marker in lowered for marker in _CORRUPT_MARKERS) else "transcode_failed"


def _result(
    out_dir: Path, layout: OutputLayout, *, info: MediaInfo, ladder: Ladder, elapsed_ms: int, video_only: bool
) -> TranscodeResult:
    renditions = tuple(
        RenditionOutput(rung=rung, stream_index=i, playlist=layout.media_playlist(i))
        for i, rung in enumerate(ladder.rungs)
    )
    cover = None if video_only else layout.cover
    expected = [layout.hls_master, layout.dash_manifest, *(r.playlist for r in renditions)] + ([cover] if cover else [])
    missing = [name for name in expected if not (out_dir / name).is_file()]
    if missing:
        raise TranscodeError("transcode_failed", f"ffmpeg exited 0 but wrote no {', '.join(missing)}")
    posters = tuple(sorted(p.relative_to(out_dir).as_posix() for p in (out_dir / "posters").glob("*.jpg")))
    audio = layout.audio if info.has_audio and not video_only and (out_dir / layout.audio).is_file() else None
    return TranscodeResult(
        out_dir=out_dir,
        renditions=renditions,
        hls_master=layout.hls_master,
        dash_manifest=layout.dash_manifest,
        cover=cover,
        posters=posters,
        audio=audio,
        duration_ms=info.duration_ms,
        elapsed_ms=elapsed_ms,
    )
