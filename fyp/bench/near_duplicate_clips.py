"""Generated clips for `fyp bench near-duplicates`: distinct sources, and the edits people make to re-upload them.

Every clip is made by ffmpeg from its lavfi sources, deterministically from a seed. A source is one of seven
moving kinds (a Mandelbrot region, drifting gradients, blurred Life or cellular automata, a window on testsrc2,
a Sierpinski fractal, a moving interference pattern), each with seed-drawn parameters, under a seed-drawn word of
text, so that two sources are distinct videos rather than two takes of one pattern.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EDITS", "Edit", "clip_maker", "make_edit", "make_source"]

WIDTH, HEIGHT, FPS = 480, 270, 15
ENCODE = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-an")
_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
_WORDS = ("sunset", "BEACH", "cat 42", "recipe", "Skate!", "vlog #7", "GOAL", "tutorial", "rain", "DANCE")


@dataclass(frozen=True, kw_only=True)
class Edit:
    """An edit of a source: `filters` is the ffmpeg -vf chain, `args` any further output options."""

    name: str
    filters: str
    args: tuple[str, ...] = ()


def _crop(fraction: float) -> str:
    """Keep the centred (1 - fraction) of each side, then scale back to the source's size."""
    keep = 1 - fraction
    return f"crop=trunc(iw*{keep}/2)*2:trunc(ih*{keep}/2)*2,scale={WIDTH}:{HEIGHT}"


EDITS: tuple[Edit, ...] = (
    Edit(name="reencode_small", filters="scale=320:180", args=("-b:v", "150k")),
    Edit(name="crop_2pct", filters=_crop(0.02)),
    Edit(name="crop_5pct", filters=_crop(0.05)),
    Edit(name="crop_7pct", filters=_crop(0.07)),
    Edit(name="crop_10pct", filters=_crop(0.10)),
    # Cut from one corner (bottom and right edges gone, e.g. a watermark): the picture shifts as well as grows.
    Edit(name="crop_5pct_corner", filters=f"crop=trunc(iw*0.95/2)*2:trunc(ih*0.95/2)*2:0:0,scale={WIDTH}:{HEIGHT}"),
    Edit(name="mirror", filters="hflip"),
    Edit(name="mirror_crop_5pct", filters=f"hflip,{_crop(0.05)}"),
    Edit(name="vflip", filters="vflip"),
    Edit(name="rotate_90", filters="transpose=clock"),
    Edit(name="speed_0.9x", filters="setpts=PTS/0.9"),
    Edit(name="speed_1.1x", filters="setpts=PTS/1.1"),
)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["nice", "-n", "19", "ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


def _base(rng: random.Random, kind: int) -> str:
    """A lavfi source graph of WIDTHxHEIGHT: the seed picks its region, colours and motion."""
    size = f"{WIDTH}x{HEIGHT}"
    seed = rng.randrange(2**31)
    if kind == 0:
        x, y = rng.uniform(-1.8, 0.3), rng.uniform(-0.9, 0.9)
        return (f"mandelbrot=size={size}:rate={FPS}:start_x={x:.4f}:start_y={y:.4f}:"
                f"start_scale={rng.uniform(0.5, 3):.3f}:end_scale=0.05")
    if kind == 1:
        return f"gradients=size={size}:rate={FPS}:seed={seed}:nb_colors={rng.randint(3, 8)}:speed=0.05"
    if kind in (2, 3):
        # A coarse grid scaled up and blurred: a raw Life or automaton grid is pixel noise, like no real video.
        grid = (f"life=size=48x27:rate={FPS}:seed={seed}:mold=10:life_color=#{rng.randrange(2**24):06x}:"
                f"death_color=#{rng.randrange(2**24):06x}" if kind == 2 else
                f"cellauto=size=60x34:rate={FPS}:seed={seed}:rule={rng.choice((18, 30, 90, 110, 150))}")
        return f"{grid},scale={WIDTH}:{HEIGHT}:flags=bilinear,gblur=sigma=3"
    if kind == 4:
        x, y = rng.randrange(0, 480, 2), rng.randrange(0, 270, 2)
        return f"testsrc2=size=960x540:rate={FPS},crop={WIDTH}:{HEIGHT}:{x}:{y},hue=h={rng.randrange(360)}"
    if kind == 5:
        return f"sierpinski=size={size}:rate={FPS}:seed={seed}:jump={rng.randint(1, 10)},gblur=sigma=2"
    a, b, c, d = (rng.uniform(8, 60) for _ in range(4))
    lum = f"128+90*sin(X/{a:.1f}+T*{rng.uniform(0.5, 3):.2f})*cos(Y/{b:.1f}-T)+30*sin((X+Y)/{c:.1f})"
    # At half size, scaled up: geq evaluates its expressions per pixel, ~4x slower at full size.
    return (f"nullsrc=size={WIDTH // 2}x{HEIGHT // 2}:rate={FPS},geq=lum='{lum}':cb='128+60*sin(X/{d:.1f})':"
            f"cr='128+60*cos(Y/{a:.1f}+T)',scale={WIDTH}:{HEIGHT}")


def make_source(path: Path, seed: int, *, duration_s: float) -> None:
    """Write source clip number `seed` (its kind is seed mod 7) to `path` unless it is already there."""
    if path.exists():
        return
    rng = random.Random(seed)
    text = (f"drawtext=fontfile={_FONT}:text='{rng.choice(_WORDS)}':fontsize={rng.randint(24, 56)}:"
            f"fontcolor=white:borderw=3:x={rng.randint(10, 250)}:y={rng.randint(10, 200)}")
    graph = f"{_base(rng, seed % 7)},{text},format=yuv420p"
    _ffmpeg("-f", "lavfi", "-i", graph, "-t", f"{duration_s:g}", *ENCODE, str(path))


def make_edit(source: Path, edit: Edit, path: Path) -> None:
    """Write `edit` of `source` to `path` unless it is already there."""
    if not path.exists():
        _ffmpeg("-i", str(source), "-vf", edit.filters, *edit.args, *ENCODE, str(path))


def clip_maker(workdir: Path, duration_s: float) -> tuple[Callable[[int], Path], Callable[[int, Edit], Path]]:
    """(source(seed) -> path, edited(seed, edit) -> path), generating each clip under `workdir` on first use."""

    def source(seed: int) -> Path:
        path = workdir / f"source_{seed}.mp4"
        make_source(path, seed, duration_s=duration_s)
        return path

    def edited(seed: int, edit: Edit) -> Path:
        path = workdir / f"source_{seed}.{edit.name}.mp4"
        make_edit(source(seed), edit, path)
        return path

    return source, edited
