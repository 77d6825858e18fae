"""The encoding ladder: which renditions to make from one source. A pure function of `MediaInfo`.

Rungs are named by the picture's short side, so a vertical 1080x1920 phone video's "1080p" rung is 1080 wide
and 1920 tall. Only rungs no larger than the source are made (never upscale); a source smaller than the
smallest rung gets a single rung at its own size. H.264 covers every rung (every device decodes it); H.265 and
AV1 are added on the top rung(s) only, where their bitrate savings pay for their encode time.

Bitrate follows PeerTube (`shared/core-utils/videos/bitrate.ts`): target = width * height * fps * bpp, with
bits-per-pixel falling as resolution rises (0.15 at 360p, 0.12 at 480p, 0.11 at 720p, 0.10 at 1080p) and a
VBV cap from the same formula with PeerTube's max bpp. H.265 and AV1 get a fraction of the H.264 figure
(0.6 and 0.5: our assumption from their usual ~40-50% savings at equal quality, to be tuned with VMAF).

Every rendition has the same constant frame rate and a 2 s GOP with closed, forced key frames at the same
timestamps, so 2 s CMAF segments line up across rungs and codecs and a player can switch at any boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from fyp.media.probe import MediaInfo

__all__ = [
    "DEFAULT_POLICY", "STAGES", "Codec", "Ladder", "LadderPolicy", "Rung", "Stage", "output_fps", "plan_ladder",
    "stage_ladder",
]

Codec = Literal["h264", "h265", "av1"]
# How the ladder is encoded (docs/UPLOADS.md, "Two stages"): "playable" is the H.264 rungs (with the audio,
# cover and posters), published first so the video can play; "extra" is the other codecs' rungs, added to the
# published set afterwards; "all" is the whole ladder in one run (the ladder benchmark, tests).
Stage = Literal["all", "playable", "extra"]
STAGES: tuple[Stage, ...] = ("all", "playable", "extra")

_ENCODERS: dict[Codec, str] = {"h264": "libx264", "h265": "libx265", "av1": "libsvtav1"}
_AVERAGE_BPP = ((2160, 0.08), (1440, 0.09), (1080, 0.10), (720, 0.11), (480, 0.12), (360, 0.15), (240, 0.17))
_MAX_BPP = ((2160, 0.14), (1440, 0.16), (1080, 0.17), (720, 0.19), (480, 0.22), (360, 0.26), (240, 0.29))
_SMALLEST_BPP = (0.19, 0.32)  # PeerTube's 144p row, for anything under 240p
_STANDARD_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
                   Fraction(50), Fraction(60000, 1001), Fraction(60))


@dataclass(frozen=True, kw_only=True)
class LadderPolicy:
    """How to plan a ladder.

    heights: short-side sizes of the H.264 rungs, largest first (default 1080/720/480/360).
    extra_codecs: per codec, how many top rungs also get that codec (default H.265 and AV1 on the top one).
    codec_bitrate_factor: bitrate of each codec relative to H.264 at the same size.
    presets: encoder preset per codec (x264/x265 veryfast; SVT-AV1 10, its fast end that still beats x264).
    segment_s: CMAF segment length and GOP, seconds (default 2).
    max_fps: frame-rate ceiling; faster sources are resampled down (default 60).
    min_extra_side: rungs whose short side is under this get H.264 only (SVT-AV1 refuses tiny pictures).
    """

    heights: tuple[int, ...] = (1080, 720, 480, 360)
    extra_codecs: dict[Codec, int] = field(default_factory=lambda: {"h265": 1, "av1": 1})
    codec_bitrate_factor: dict[Codec, float] = field(
        default_factory=lambda: {"h264": 1.0, "h265": 0.6, "av1": 0.5}
    )
    presets: dict[Codec, str] = field(
        default_factory=lambda: {"h264": "veryfast", "h265": "veryfast", "av1": "10"}
    )
    segment_s: int = 2
    max_fps: int = 60
    min_extra_side: int = 128

    def __post_init__(self) -> None:
        if not self.heights or list(self.heights) != sorted(set(self.heights), reverse=True):
            raise ValueError(f"heights must be distinct and largest first, got {self.heights}")
        if any(h <= 0 or h % 2 for h in self.heights):
            raise ValueError(f"heights must be positive even numbers, got {self.heights}")
        if self.segment_s <= 0 or self.max_fps <= 0:
            raise ValueError("segment_s and max_fps must be positive")
        unknown = set(self.extra_codecs) - {"h265", "av1"}
        if unknown:
            raise ValueError(f"extra_codecs may name h265 and av1 only, got {sorted(unknown)}")


DEFAULT_POLICY = LadderPolicy()


@dataclass(frozen=True, kw_only=True)
class Rung:
    """One rendition: codec, encoder and preset, even output size, target and cap bitrates (kbit/s)."""

    codec: Codec
    encoder: str
    preset: str
    width: int
    height: int
    bitrate_kbps: int
    maxrate_kbps: int

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def name(self) -> str:
        return f"{self.codec}_{self.short_side}p"


@dataclass(frozen=True, kw_only=True)
class Ladder:
    """Rungs (H.264 largest first, then the extra codecs) sharing one frame rate and GOP."""

    rungs: tuple[Rung, ...]
    fps: Fraction
    segment_s: int

    @property
    def gop_frames(self) -> int:
        return math.ceil(self.fps * self.segment_s)

    @property
    def top(self) -> Rung:
        return self.rungs[0]


def stage_ladder(ladder: Ladder, stage: Stage) -> Ladder | None:
    """The part of `ladder` one stage encodes; None when that stage has nothing to do (an "extra" stage for a
    source too small for H.265/AV1, or a policy without them). Frame rate and GOP stay the ladder's, so the
    stages' segments line up and one manifest can list rungs of both.

    >>> from fyp.media.probe import MediaInfo, sniff
    >>> full = plan_ladder(MediaInfo(size_bytes=1, sniffed=sniff(b""), display_width=640, display_height=360))
    >>> [r.name for r in stage_ladder(full, "playable").rungs], [r.name for r in stage_ladder(full, "extra").rungs]
    (['h264_360p'], ['h265_360p', 'av1_360p'])
    """
    if stage == "all":
        return ladder
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    wanted = [r for r in ladder.rungs if (r.codec == "h264") == (stage == "playable")]
    if not wanted:
        return None
    return Ladder(rungs=tuple(wanted), fps=ladder.fps, segment_s=ladder.segment_s)


def output_fps(info: MediaInfo, max_fps: int = 60) -> Fraction:
    """The constant frame rate every rendition gets.

    The nominal rate when plausible (variable-rate phone clips report their capture rate there), else the
    average; snapped to the nearest broadcast rate within 2% (29.97 stays 30000/1001), capped at `max_fps`.
    """
    for candidate in (info.fps, info.avg_fps):
        if 1 <= candidate <= 240:
            rate = candidate
            break
    else:
        return Fraction(30)
    nearest = min(_STANDARD_RATES, key=lambda r: abs(r - rate))
    rate = nearest if abs(nearest - rate) <= rate * Fraction(2, 100) else Fraction(round(rate))
    return min(rate, Fraction(max_fps))


def plan_ladder(info: MediaInfo, policy: LadderPolicy = DEFAULT_POLICY) -> Ladder:
    """Plan the renditions of a source, from its display size (rotation applied) and frame rate.

    >>> from fyp.media.probe import MediaInfo, sniff
    >>> src = MediaInfo(size_bytes=1, sniffed=sniff(b""), display_width=1080, display_height=1920, fps=30)
    >>> [(r.name, r.width, r.height) for r in plan_ladder(src).rungs][:2]
    [('h264_1080p', 1080, 1920), ('h264_720p', 720, 1280)]
    """
    width, height = info.display_width, info.display_height
    if width < 2 or height < 2:
        raise ValueError(f"cannot plan a ladder for a {width}x{height} picture")
    fps = output_fps(info, policy.max_fps)
    source_short = min(width, height)
    sides = [h for h in policy.heights if h <= source_short] or [_even_floor(source_short)]
    sizes = [_scaled(width, height, side) for side in sides]
    rungs = [_rung("h264", w, h, fps, policy) for w, h in sizes]
    for codec, count in policy.extra_codecs.items():
        tops = [(w, h) for w, h in sizes[:count] if min(w, h) >= policy.min_extra_side]
        rungs += [_rung(codec, w, h, fps, policy) for w, h in tops]
    return Ladder(rungs=tuple(rungs), fps=fps, segment_s=policy.segment_s)


def _rung(codec: Codec, width: int, height: int, fps: Fraction, policy: LadderPolicy) -> Rung:
    average, cap = _bpp(min(width, height))
    factor = policy.codec_bitrate_factor.get(codec, 1.0)
    pixels_per_s = width * height * float(fps)
    return Rung(
        codec=codec,
        encoder=_ENCODERS[codec],
        preset=policy.presets[codec],
        width=width,
        height=height,
        bitrate_kbps=max(1, round(pixels_per_s * average * factor / 1000)),
        maxrate_kbps=max(1, round(pixels_per_s * cap * factor / 1000)),
    )


def _bpp(short_side: int) -> tuple[float, float]:
    for (size, average), (_, cap) in zip(_AVERAGE_BPP, _MAX_BPP, strict=True):
        if short_side >= size:
            return average, cap
    return _SMALLEST_BPP


def _scaled(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Scale so the short side is `short_side`, keeping the aspect ratio; both sides even (4:2:0 needs it)."""
    if width <= height:
        return _even_floor(min(short_side, width)), _even_round(height * short_side / width)
    return _even_round(width * short_side / height), _even_floor(min(short_side, height))


def _even_round(x: float) -> int:
    return max(2, 2 * round(x / 2))


def _even_floor(x: float) -> int:
    return max(2, 2 * math.floor(x / 2))
