"""Which licensed track a video's audio contains, if any: Chromaprint fingerprints against the music catalogue.

`fpcalc -raw` turns audio into 32-bit sub-fingerprints, about 8 per second, each a hash of the spectrum
around one instant. Two recordings of the same music produce mostly the same bits at the right alignment, so
the standard Chromaprint comparison slides one sequence over the other and, at each offset, counts differing
bits (popcount of XOR) over the overlap. The lowest bit error rate (BER) wins: about 0.5 for unrelated audio,
near 0 for the same audio re-encoded. score = 1 - 2 * BER maps that to 0..1.

The catalogue is a list of tracks, each with its fingerprint and a licence decision: `allow` (publish),
`mute` (publish with the audio silenced, docs/MODERATION.md "Mute") or `block` (do not publish); it is kept in
S3 and edited with `fyp music` (`fyp.media.music_catalogue`). AcoustID's own lookup is a web service and cannot
be used here. Brute-force sliding costs O(n*m) per track: fine for a
few thousand tracks; beyond that, index tracks by sub-fingerprint values to pick candidates first, as
AcoustID's server does.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
    "match",
    "validate_music_id",
    "validate_title",
]

Decision = Literal["allow", "mute", "block"]
ITEMS_PER_SECOND = 8.07  # Chromaprint's default: one sub-fingerprint per 4096/3 samples at 11025 Hz
# Reference tracks and videos are fingerprinted over their first 180 s at most: a longer track costs no more to
# fingerprint (fpcalc stops reading) or to match (the slide is O(len(a) x len(b))), and 3 minutes holds the part
# of a song a short video uses. A 10 s excerpt from after the first 180 s does not match.
MATCH_THRESHOLD = 0.5  # score = 1 - 2 * BER: a match needs BER <= 0.25
MAX_FINGERPRINT_SECONDS = 180
MAX_FINGERPRINT_ITEMS = round(MAX_FINGERPRINT_SECONDS * ITEMS_PER_SECOND) + 16  # fpcalc rounds up a little
MAX_MUSIC_ID_LENGTH = 64
MAX_TITLE_LENGTH = 200
_MUSIC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_music_id(music_id: str) -> str:
    """Return `music_id` if it is 1..64 characters of [A-Za-z0-9._-] starting with a letter or digit (it goes
    into events, Redis and reasons such as `music_muted:<id>`); ValueError otherwise.

    >>> validate_music_id("label-42_song.v2")
    'label-42_song.v2'
    """
    if not isinstance(music_id, str) or not music_id:
        raise ValueError("music_id must not be empty")
    if len(music_id) > MAX_MUSIC_ID_LENGTH:
        raise ValueError(f"music_id longer than {MAX_MUSIC_ID_LENGTH} characters")
    if not _MUSIC_ID.fullmatch(music_id):
        raise ValueError(f"music_id {music_id!r} must be [A-Za-z0-9._-], starting with a letter or digit")
    return music_id


def validate_title(title: str) -> str:
    """Return `title` if it is a string of at most 200 characters without control characters; ValueError if not."""
    if not isinstance(title, str) or len(title) > MAX_TITLE_LENGTH:
        raise ValueError(f"title must be a string of at most {MAX_TITLE_LENGTH} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in title):
        raise ValueError("title contains a control character")
    return title


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
        validate_music_id(self.music_id)
        validate_title(self.title)
        if not self.fingerprint.values:
            raise ValueError(f"track {self.music_id}: empty fingerprint")
        if len(self.fingerprint.values) > MAX_FINGERPRINT_ITEMS:
            raise ValueError(f"track {self.music_id}: fingerprint longer than {MAX_FINGERPRINT_ITEMS} items "
                             f"({MAX_FINGERPRINT_SECONDS} s)")


@dataclass(frozen=True, kw_only=True)
class MusicMatch:
    """The catalogue track a video's audio matched, with score (0..1) and the track's licence decision."""

    music_id: str
    score: float
    decision: Decision


def fingerprint_file(path: Path, *, max_seconds: int = MAX_FINGERPRINT_SECONDS, fpcalc: str = "fpcalc") -> Fingerprint:
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

    One numpy pass over every offset at once: the shorter sequence is compared with each window of the longer
    one, zero-padded, and a mask leaves the padding out of both the bit count and the overlap length. Memory
    and time are about (len(longer) + len(shorter)) x len(shorter): ~9 MB for two 3-minute fingerprints, 0.5 MB
    for a 10 s clip against a 3-minute track (sliding the track over the clip instead would cost 25 times more).

    >>> best_alignment([1, 2, 3, 4], [3, 4], min_overlap=2)
    (0.0, 2)
    """
    if len(b) > len(a):
        # b at offset o within a is a at offset -o within b: the same alignments, the cheap way round.
        ber, offset = best_alignment(b, a, min_overlap=min_overlap)
        return ber, -offset
    x = np.asarray(a, dtype=np.uint32)
    y = np.asarray(b, dtype=np.uint32)
    overlap_needed = min(min_overlap, len(x), len(y))
    if overlap_needed == 0:
        return 1.0, 0
    pad = len(y) - overlap_needed  # offsets run from -pad to len(x) - overlap_needed
    padded = np.concatenate([np.zeros(pad, np.uint32), x, np.zeros(pad, np.uint32)])
    valid = np.concatenate([np.zeros(pad, bool), np.ones(len(x), bool), np.zeros(pad, bool)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, len(y))
    masks = np.lib.stride_tricks.sliding_window_view(valid, len(y))
    errors = np.where(masks, np.bitwise_count(windows ^ y), 0).sum(axis=1)
    overlap = masks.sum(axis=1)
    ber = errors / (32.0 * overlap)
    best = int(np.argmin(ber))
    return float(ber[best]), best - pad


def match(
    fingerprint: Fingerprint,
    catalogue: Iterable[CatalogueEntry],
    *,
    threshold: float = MATCH_THRESHOLD,
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
