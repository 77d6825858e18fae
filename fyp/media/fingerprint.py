"""Which licensed track a video's audio contains, if any: Chromaprint fingerprints against a local catalogue.

`fpcalc -raw` turns audio into 32-bit sub-fingerprints, about 8 per second, each a hash of the spectrum
around one instant. Two recordings of the same music produce mostly the same bits at the right alignment, so
the standard Chromaprint comparison slides one sequence over the other and, at each offset, counts differing
bits (popcount of XOR) over the overlap. The lowest bit error rate (BER) wins: about 0.5 for unrelated audio,
near 0 for the same audio re-encoded. score = 1 - 2 * BER maps that to 0..1.

The catalogue is a JSON file of tracks, each with its fingerprint and a licence decision: `allow` (publish),
`mute` (publish with the audio silenced, docs/MODERATION.md "Mute") or `block` (do not publish). AcoustID's
own lookup is a web service and cannot be used here. Brute-force sliding costs O(n*m) per track: fine for a
few thousand tracks; beyond that, index tracks by sub-fingerprint values to pick candidates first, as
AcoustID's server does.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

__all__ = [
    "CatalogueEntry",
    "Decision",
    "Fingerprint",
    "MusicMatch",
    "best_alignment",
    "build_entry",
    "decode_fingerprint",
    "encode_fingerprint",
    "fingerprint_file",
    "load_catalogue",
    "match",
    "save_catalogue",
]

Decision = Literal["allow", "mute", "block"]
ITEMS_PER_SECOND = 8.07  # Chromaprint's default: one sub-fingerprint per 4096/3 samples at 11025 Hz


@dataclass(frozen=True, kw_only=True)
class Fingerprint:
    """Raw Chromaprint sub-fingerprints (unsigned 32-bit) of `duration_s` seconds of audio."""

    duration_s: float
    values: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class CatalogueEntry:
    """A reference track and what to do with a video that uses it."""

    music_id: str
    title: str
    decision: Decision
    fingerprint: Fingerprint

    def __post_init__(self) -> None:
        if self.decision not in get_args(Decision):
            raise ValueError(f"decision must be one of {get_args(Decision)}, got {self.decision!r}")
        if not self.music_id:
            raise ValueError("music_id must not be empty")


@dataclass(frozen=True, kw_only=True)
class MusicMatch:
    """The catalogue track a video's audio matched, with score (0..1) and the track's licence decision."""

    music_id: str
    score: float
    decision: Decision


def fingerprint_file(path: Path, *, max_seconds: int = 180, fpcalc: str = "fpcalc") -> Fingerprint:
    """Run `fpcalc -raw -json` on an audio (or video) file; the first `max_seconds` are fingerprinted."""
    proc = subprocess.run(
        [fpcalc, "-raw", "-json", "-length", str(max_seconds), str(path)],
        capture_output=True,
        text=True,
        timeout=60 + max_seconds,
        check=False,
    )
    # fpcalc 1.5 reports "Error decoding audio frame (End of file)" at the end of complete AAC files and exits
    # 3, after printing the whole fingerprint; so a parsable, non-empty fingerprint counts as success.
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        data = {}
    if not data.get("fingerprint"):
        raise RuntimeError(f"fpcalc failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return Fingerprint(
        duration_s=float(data.get("duration", 0.0)),
        values=tuple(int(v) & 0xFFFFFFFF for v in data.get("fingerprint", [])),
    )


_TEXT_PREFIX = "cp1:"


def encode_fingerprint(fingerprint: Fingerprint) -> str:
    """Text form for events (TranscodeCompleted.audio_fingerprint): `cp1:<duration_s>:<base64url of the
    sub-fingerprints as little-endian uint32>`, about 5.3 characters per sub-fingerprint (~7.7 kB for 3 min).

    >>> encode_fingerprint(Fingerprint(duration_s=1.5, values=(1, 2)))
    'cp1:1.5:AQAAAAIAAAA='
    """
    packed = np.asarray(fingerprint.values, dtype="<u4").tobytes()
    return f"{_TEXT_PREFIX}{fingerprint.duration_s:g}:{base64.urlsafe_b64encode(packed).decode()}"


def decode_fingerprint(text: str) -> Fingerprint:
    """Inverse of `encode_fingerprint`; ValueError for anything else."""
    if not text.startswith(_TEXT_PREFIX):
        raise ValueError("not a cp1: fingerprint")
    duration, _, body = text[len(_TEXT_PREFIX) :].partition(":")
    raw = base64.urlsafe_b64decode(body.encode())
    if len(raw) % 4:
        raise ValueError("fingerprint body is not a whole number of uint32")
    values = np.frombuffer(raw, dtype="<u4")
    return Fingerprint(duration_s=float(duration), values=tuple(int(v) for v in values))


def best_alignment(a: Sequence[int], b: Sequence[int], *, min_overlap: int = 40) -> tuple[float, int]:
    """(lowest bit error rate, offset of b within a) over all offsets with at least `min_overlap` items
    (default 40, about 5 s) in common; (1.0, 0) when the sequences are too short to compare.

    >>> best_alignment([1, 2, 3, 4], [3, 4], min_overlap=2)
    (0.0, 2)
    """
    x = np.asarray(a, dtype=np.uint32)
    y = np.asarray(b, dtype=np.uint32)
    overlap_needed = min(min_overlap, len(x), len(y))
    if overlap_needed == 0:
        return 1.0, 0
    best = (1.0, 0)
    for offset in range(-(len(y) - overlap_needed), len(x) - overlap_needed + 1):
        xs = x[max(0, offset) : offset + len(y)] if offset + len(y) > 0 else x[:0]
        ys = y[max(0, -offset) : max(0, -offset) + len(xs)]
        if len(xs) < overlap_needed:
            continue
        ber = float(np.bitwise_count(xs ^ ys).sum()) / (32 * len(xs))
        if ber < best[0]:
            best = (ber, offset)
    return best


def match(
    fingerprint: Fingerprint,
    catalogue: Iterable[CatalogueEntry],
    *,
    threshold: float = 0.5,
    min_overlap_s: float = 5.0,
) -> MusicMatch | None:
    """The best catalogue track whose score is at least `threshold` (default 0.5, i.e. BER <= 0.25), or None.

    min_overlap_s: the shortest stretch (seconds, default 5) that must line up; shorter clips are compared
    over their whole length.
    """
    min_overlap = max(1, round(min_overlap_s * ITEMS_PER_SECOND))
    best: MusicMatch | None = None
    for entry in catalogue:
        ber, _ = best_alignment(fingerprint.values, entry.fingerprint.values, min_overlap=min_overlap)
        score = round(max(0.0, 1.0 - 2.0 * ber), 4)
        if score >= threshold and (best is None or score > best.score):
            best = MusicMatch(music_id=entry.music_id, score=score, decision=entry.decision)
    return best


def build_entry(audio: Path, *, music_id: str, title: str, decision: Decision) -> CatalogueEntry:
    """Fingerprint a reference recording into a catalogue entry."""
    fingerprint = fingerprint_file(audio)
    return CatalogueEntry(music_id=music_id, title=title, decision=decision, fingerprint=fingerprint)


def save_catalogue(path: Path, entries: Iterable[CatalogueEntry]) -> None:
    """Write the catalogue JSON: {"version": 1, "tracks": [{music_id, title, decision, fingerprint...}]}."""
    tracks = []
    for entry in entries:
        row = asdict(entry)
        row["fingerprint"]["values"] = list(entry.fingerprint.values)
        tracks.append(row)
    path.write_text(json.dumps({"version": 1, "tracks": tracks}))


def load_catalogue(path: Path) -> tuple[CatalogueEntry, ...]:
    """Read a catalogue written by `save_catalogue`; a missing file is an empty catalogue."""
    if not path.exists():
        return ()
    data = json.loads(path.read_text())
    if data.get("version") != 1:
        raise ValueError(f"{path}: unsupported catalogue version {data.get('version')!r}")
    return tuple(
        CatalogueEntry(
            music_id=str(row["music_id"]),
            title=str(row.get("title", "")),
            decision=row["decision"],
            fingerprint=Fingerprint(
                duration_s=float(row["fingerprint"]["duration_s"]),
                values=tuple(int(v) & 0xFFFFFFFF for v in row["fingerprint"]["values"]),
            ),
        )
        for row in data["tracks"]
    )
