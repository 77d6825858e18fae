"""`fyp bench near-duplicates`: how many edited re-uploads the PDQ index catches, and how often it matches wrongly.

Sources are indexed; each edit of each source (fyp.bench.near_duplicate_clips.EDITS) is queried and counts as
detected when it matches its own source. False matches: clips from seeds that were never indexed, and each source
queried against the index without itself; a match to anything is false. Frames are sampled as the moderator
samples them (fyp.moderation.frames). Hashing time is the CPU time of `video_signature` per clip (sampling
excluded; CPU, not wall time, so that a shared machine's load weighs less); query time is that of `PdqIndex.query`,
against the sources plus `padding` random signatures (8 frames each; random hashes lie ~128 bits apart, so they
add cost and never a match), to time queries at an index size no generated set reaches.
Needs ffmpeg, nothing of the stack.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fyp.bench.near_duplicate_clips import EDITS, clip_maker
from fyp.bench.stats import latency_summary
from fyp.moderation.frames import sample_frames
from fyp.moderation.phash import CROP_LEVELS, PdqIndex, VideoSignature, video_signature

__all__ = ["NearDuplicateResult", "run_near_duplicates"]


@dataclass(frozen=True, kw_only=True)
class NearDuplicateResult:
    """Rates are fractions of queried clips; `hashing` and `query` are summaries of CPU ms per clip."""

    sources: int
    unrelated: int
    padding: int
    duration_s: float
    detection: dict[str, float]  # edit name -> share of its copies matched to their own source
    wrong_source: int  # edited copies matched to a source other than their own
    false_match_rate: float  # of unrelated clips and sources-against-the-others
    false_matches: list[str]
    hashing: dict[str, float]
    query: dict[str, float]


def run_near_duplicates(
    *, sources: int = 28, unrelated: int = 21, duration_s: float = 4.0, seed: int = 0,
    padding: int = 0, clips_dir: Path | None = None, progress: Callable[[str], None] | None = None,
) -> NearDuplicateResult:
    """Generate (or reuse, under `clips_dir`) the clips, index the sources, query every edit and unrelated clip.

    Source seeds are seed .. seed+sources-1; unrelated clips use the next `unrelated` seeds. Default size: 28
    sources x 12 edits + 21 unrelated, ~5 minutes on one shared core.
    """
    if sources < 2 or unrelated < 0 or padding < 0 or duration_s <= 0:
        raise ValueError("need sources >= 2, unrelated >= 0, padding >= 0 and duration_s > 0")
    note = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="fyp-neardup-") as tmp:
        workdir = Path(clips_dir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        source, edited = clip_maker(workdir, duration_s)
        hashing_ms: list[float] = []

        def signature(path: Path) -> VideoSignature:
            frames = sample_frames(path)
            started = time.process_time()
            sig = video_signature(frames)
            hashing_ms.append((time.process_time() - started) * 1000)
            return sig

        index, originals = PdqIndex(), {}
        _pad(index, padding, seed)
        for s in range(seed, seed + sources):
            note(f"source {s - seed + 1}/{sources}")
            originals[s] = signature(source(s))
            index.add(str(s), originals[s])
        query_ms: list[float] = []

        def query(sig: VideoSignature, exclude: str | None = None) -> str | None:
            started = time.process_time()
            found = index.query(sig, exclude=exclude)
            query_ms.append((time.process_time() - started) * 1000)
            return found.video_id if found else None

        detection, wrong = {}, 0
        for edit in EDITS:
            note(f"edit {edit.name}")
            hits = 0
            for s in range(seed, seed + sources):
                found = query(signature(edited(s, edit)))
                hits += found == str(s)
                wrong += found is not None and found != str(s)
            detection[edit.name] = round(hits / sources, 4)
        false = [f"source {s} ~ {found}" for s in originals if (found := query(originals[s], exclude=str(s)))]
        for s in range(seed + sources, seed + sources + unrelated):
            note(f"unrelated {s - seed - sources + 1}/{unrelated}")
            if found := query(signature(source(s))):
                false.append(f"unrelated {s} ~ {found}")
    return NearDuplicateResult(
        sources=sources, unrelated=unrelated, padding=padding, duration_s=duration_s, detection=detection,
        wrong_source=wrong,
        false_match_rate=round(len(false) / (sources + unrelated), 4), false_matches=false,
        hashing=latency_summary(hashing_ms), query=latency_summary(query_ms),
    )


def _pad(index: PdqIndex, videos: int, seed: int) -> None:
    """Add `videos` random 8-frame signatures, shaped as `video_signature` makes them (whole frame + crops)."""
    rng = np.random.default_rng(seed)
    levels = CROP_LEVELS
    for i in range(videos):
        hashes = rng.integers(0, 256, (8, 1 + len(levels), 32), dtype=np.uint8)
        index.add(f"pad{i}", VideoSignature(hashes=hashes[:, 0].copy(), qualities=np.full(8, 100, dtype=np.int16),
                                            crops=hashes[:, 1:].copy(), crop_levels=levels))
