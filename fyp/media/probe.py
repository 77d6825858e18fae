"""What an uploaded file is: magic-byte sniffing, ffprobe facts as a frozen `MediaInfo`, and upload limits.

The upload API and the transcoder both judge a file here, so a file refused at `complete` is refused for the
same reason by the worker. Reasons are short machine strings (`too_long:312s`), stable enough to count by.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import ffmpeg

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "MediaInfo",
    "Sniffed",
    "check_limits",
    "probe",
    "sniff",
]

SniffKind = Literal["video", "image", "audio", "text", "empty", "unknown"]

# Containers we accept and the demuxer we force for each. Forcing the demuxer instead of letting ffmpeg guess
# keeps playlist-style demuxers (hls, concat, image2) from ever opening an upload: those can read other local
# files or URLs named inside the file.
_DEMUXERS = {"mov": "mov", "matroska": "matroska", "avi": "avi"}
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis", b"crx "}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_STILL_CODECS = {"png", "mjpeg", "bmp", "gif", "webp", "tiff", "jpeg2000", "jpegls", "apng", "pam", "ppm"}


@dataclass(frozen=True, kw_only=True)
class Sniffed:
    """What the first bytes say: `kind`, and for a video the container (it picks the forced demuxer)."""

    kind: SniffKind
    container: str | None = None
    detail: str = ""


def sniff(head: bytes) -> Sniffed:
    """Classify a file from its first bytes (64 are enough) by magic number, never by name or client claim.

    >>> sniff(b"\\x00\\x00\\x00\\x18ftypmp42").container
    'mov'
    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n").kind
    'image'
    """
    if not head:
        return Sniffed(kind="empty")
    box, brand = head[4:8], head[8:12]
    if box == b"ftyp":
        if brand in _IMAGE_BRANDS:
            return Sniffed(kind="image", detail=brand.decode("latin-1").strip())
        return Sniffed(kind="video", container="mov", detail=brand.decode("latin-1").strip())
    if box in _QUICKTIME_ATOMS:
        return Sniffed(kind="video", container="mov", detail="quicktime")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed(kind="video", container="matroska")
    if head.startswith(b"RIFF"):
        fourcc = head[8:12]
        if fourcc == b"AVI ":
            return Sniffed(kind="video", container="avi")
        kind: SniffKind = "audio" if fourcc == b"WAVE" else "image" if fourcc == b"WEBP" else "unknown"
        return Sniffed(kind=kind, detail=fourcc.decode("latin-1").strip())
    for magic, kind, detail in _OTHER_MAGIC:
        if head.startswith(magic):
            return Sniffed(kind=kind, detail=detail)
    if _looks_like_text(head):
        return Sniffed(kind="text")
    return Sniffed(kind="unknown")


_OTHER_MAGIC: tuple[tuple[bytes, SniffKind, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image", "png"),
    (b"\xff\xd8\xff", "image", "jpeg"),
    (b"GIF87a", "image", "gif"),
    (b"GIF89a", "image", "gif"),
    (b"II*\x00", "image", "tiff"),
    (b"MM\x00*", "image", "tiff"),
    (b"ID3", "audio", "mp3"),
    (b"\xff\xfb", "audio", "mp3"),
    (b"\xff\xf3", "audio", "mp3"),
    (b"\xff\xf1", "audio", "aac"),
    (b"fLaC", "audio", "flac"),
    (b"OggS", "audio", "ogg"),
)


def _looks_like_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        # The sample may end inside a multi-byte character; judge all but the last few bytes.
        try:
            decoded = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\r\n\t\f" for ch in decoded)


@dataclass(frozen=True, kw_only=True)
class MediaInfo:
    """ffprobe's view of one file. Stream fields are empty when there is no such stream.

    `width`/`height` are the coded size; `display_width`/`display_height` are what a viewer sees after the
    rotation (degrees clockwise, 0/90/180/270) and the sample aspect ratio are applied. `fps` is the nominal
    rate (ffprobe's r_frame_rate), `avg_fps` the measured average; they differ for variable-frame-rate files.
    `video_index` is the absolute index of the video stream used (not `0:v:0`: an mp4 may carry cover art as
    an earlier "video" stream).
    """

    size_bytes: int
    sniffed: Sniffed
    readable: bool = False
    error: str = ""
    format_name: str = ""
    duration_ms: int = 0
    has_video: bool = False
    has_audio: bool = False
    video_codec: str | None = None
    audio_codec: str | None = None
    video_index: int | None = None
    still_image: bool = False
    width: int = 0
    height: int = 0
    rotation: int = 0
    display_width: int = 0
    display_height: int = 0
    fps: Fraction = Fraction(0)
    avg_fps: Fraction = Fraction(0)
    variable_frame_rate: bool = False

    @property
    def demuxer(self) -> str | None:
        """The ffmpeg demuxer to force when reading this file (None: not an accepted container)."""
        return _DEMUXERS.get(self.sniffed.container or "")


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Upload limits. Defaults: 180 s, 500 MB (10^6 bytes), 4096 px on the longer display side."""

    max_duration_s: float = 180.0
    max_size_bytes: int = 500_000_000
    max_dimension: int = 4096

    def __post_init__(self) -> None:
        if self.max_duration_s <= 0 or self.max_size_bytes <= 0 or self.max_dimension <= 0:
            raise ValueError(f"limits must be positive: {self}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Limits:
        """The defaults, overridden by FYP_UPLOAD_MAX_DURATION_S, FYP_UPLOAD_MAX_BYTES, FYP_UPLOAD_MAX_DIMENSION.

        The upload API and the transcoder both read them, so the two judge a file by the same limits.
        """
        values: dict[str, Any] = {}
        for name, variable, kind in (("max_duration_s", "FYP_UPLOAD_MAX_DURATION_S", float),
                                     ("max_size_bytes", "FYP_UPLOAD_MAX_BYTES", int),
                                     ("max_dimension", "FYP_UPLOAD_MAX_DIMENSION", int)):
            if environ.get(variable):
                try:
                    values[name] = kind(environ[variable])
                except ValueError:
                    raise ValueError(f"{variable}={environ[variable]!r} is not a number") from None
        return cls(**values)


DEFAULT_LIMITS = Limits()


def probe(path: Path | str) -> MediaInfo:
    """Sniff then ffprobe `path`; never raises for a bad file (see `readable` and `error`).

    ffprobe runs only on accepted containers, with the demuxer forced and only the `file` protocol allowed.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        sniffed = sniff(handle.read(64))
    demuxer = _DEMUXERS.get(sniffed.container or "")
    if size == 0 or demuxer is None:
        return MediaInfo(size_bytes=size, sniffed=sniffed)
    try:
        raw = ffmpeg.probe(str(path), f=demuxer, protocol_whitelist="file")
    except ffmpeg.Error as exc:
        lines = exc.stderr.decode("utf-8", "replace").strip().splitlines()
        return MediaInfo(size_bytes=size, sniffed=sniffed, error=lines[-1] if lines else "ffprobe failed")
    return _from_ffprobe(raw, size=size, sniffed=sniffed)


def _from_ffprobe(raw: dict[str, Any], *, size: int, sniffed: Sniffed) -> MediaInfo:
    streams = raw.get("streams", [])
    fmt = raw.get("format", {})
    # Cover art inside an m4a is a one-picture "video" stream flagged attached_pic: not a video.
    videos = [s for s in streams if s.get("codec_type") == "video" and not _attached_pic(s)]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    video = videos[0] if videos else None
    duration_s = _number(fmt.get("duration")) or max((_number(s.get("duration")) for s in streams), default=0)
    info: dict[str, Any] = {
        "size_bytes": size,
        "sniffed": sniffed,
        "readable": True,
        "format_name": fmt.get("format_name", ""),
        "duration_ms": round(duration_s * 1000),
        "has_audio": bool(audios),
        "audio_codec": audios[0].get("codec_name") if audios else None,
    }
    if video is None:
        return MediaInfo(**info)
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    rotation = _rotation(video)
    sar = _fraction(video.get("sample_aspect_ratio")) or Fraction(1)
    shown_w, shown_h = max(1, round(width * sar)), height
    if rotation in (90, 270):
        shown_w, shown_h = shown_h, shown_w
    fps, avg_fps = _fraction(video.get("r_frame_rate")), _fraction(video.get("avg_frame_rate"))
    nb_frames = int(video.get("nb_frames") or 0)
    codec = video.get("codec_name")
    return MediaInfo(
        **info,
        has_video=width > 0 and height > 0,
        video_codec=codec,
        video_index=int(video.get("index", 0)),
        still_image=codec in _STILL_CODECS and (nb_frames <= 1 or duration_s == 0),
        width=width,
        height=height,
        rotation=rotation,
        display_width=shown_w,
        display_height=shown_h,
        fps=fps,
        avg_fps=avg_fps,
        # A heuristic: containers store no "VFR" flag. ffprobe's nominal and average rates disagree when frame
        # spacing varies. The transcoder resamples to a constant rate either way; this is for reports.
        variable_frame_rate=bool(fps and avg_fps and abs(float(fps - avg_fps)) > 0.01 * float(fps)),
    )


def _attached_pic(stream: dict[str, Any]) -> bool:
    return bool(stream.get("disposition", {}).get("attached_pic"))


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise degrees a player turns the picture (the old `rotate` tag's meaning), 0/90/180/270."""
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            # The display matrix reports counter-clockwise degrees; ffmpeg's own autorotate negates it too.
            return _quarter(-float(side["rotation"]))
    tag = stream.get("tags", {}).get("rotate")
    return _quarter(float(tag)) if tag else 0


def _quarter(degrees: float) -> int:
    return (round(degrees / 90) * 90) % 360


def _fraction(text: str | None) -> Fraction:
    if not text or text in ("0/0", "N/A"):
        return Fraction(0)
    try:
        value = Fraction(text.replace(":", "/"))
    except (ValueError, ZeroDivisionError):
        return Fraction(0)
    return value if value > 0 else Fraction(0)


def _number(text: str | None) -> float:
    try:
        value = float(text) if text not in (None, "N/A") else 0.0
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def check_limits(info: MediaInfo, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """Why this file cannot be published, or None when it can.

    Reasons: `zero_bytes`, `not_a_video:<image|text|unknown>`, `audio_only`, `corrupt`,
    `too_large:<MB>MB`, `too_long:<s>s`, `resolution_too_high:<w>x<h>`.

    >>> check_limits(MediaInfo(size_bytes=0, sniffed=sniff(b"")))
    'zero_bytes'
    """
    kind = info.sniffed.kind
    if info.size_bytes == 0:
        return "zero_bytes"
    if info.size_bytes > limits.max_size_bytes:
        return f"too_large:{math.ceil(info.size_bytes / 1_000_000)}MB"
    if kind == "audio":
        return "audio_only"
    if kind != "video":
        return f"not_a_video:{kind}"
    if not info.readable:
        return "corrupt"
    if info.still_image:
        return "not_a_video:image"
    if not info.has_video:
        return "audio_only" if info.has_audio else "corrupt"
    if info.duration_ms <= 0:
        return "corrupt"
    if info.duration_ms > limits.max_duration_s * 1000:
        return f"too_long:{math.ceil(info.duration_ms / 1000)}s"
    if max(info.display_width, info.display_height) > limits.max_dimension:
        return f"resolution_too_high:{info.display_width}x{info.display_height}"
    return None
