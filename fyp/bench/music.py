"""`fyp bench music`: does the matcher find a short excerpt of a catalogued track, and only that?

Generated songs (`fyp.bench.music_synth`): `tracks` 3-minute ones are fingerprinted into an in-memory catalogue
(policy `mute`); from each, `excerpts_per_track` excerpts of `excerpt_s` seconds are cut at random offsets
(any sample, so never aligned to Chromaprint's frames), optionally re-encoded to AAC at `aac_kbps`, and
fingerprinted as a video's audio is. Then `unrelated` other songs (30 s each, an excerpt cut the same way) are
matched too. Reported: hit rate (the excerpt matched its own track), wrong-track rate, false-match rate
(an unrelated song matched anything), the score ranges, and per-query timings of fpcalc and of `match`
(wall and CPU: `match` against the whole catalogue of `tracks`).
Nothing touches the stack.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fyp.bench.music_synth import SAMPLE_RATE, synth_track, write_wav
from fyp.bench.stats import latency_summary
from fyp.media.fingerprint import MATCH_THRESHOLD, CatalogueEntry, Fingerprint, fingerprint_file, match

__all__ = ["MusicBenchConfig", "run_music_bench"]

TRACK_S = 180.0
UNRELATED_S = 30.0


@dataclass(frozen=True, kw_only=True)
class MusicBenchConfig:
    """tracks: catalogued songs (3 min each). excerpts_per_track: queries cut from each. unrelated: songs not
    catalogued, one query each. excerpt_s: query length (s). aac_kbps: re-encode queries to AAC first (0: no).
    seed: of the songs and the offsets."""

    tracks: int = 20
    excerpts_per_track: int = 5
    unrelated: int = 200
    excerpt_s: float = 10.0
    aac_kbps: int = 0
    seed: int = 7

    def __post_init__(self) -> None:
        if self.tracks < 1 or self.excerpts_per_track < 1 or self.unrelated < 0:
            raise ValueError("tracks and excerpts_per_track must be >= 1, unrelated >= 0")
        if not 3 <= self.excerpt_s <= UNRELATED_S:
            raise ValueError(f"excerpt_s must be 3..{UNRELATED_S:g} s")


def _query(
    audio: np.ndarray, rng: np.random.Generator, config: MusicBenchConfig, work: Path
) -> tuple[Fingerprint, float]:
    """Fingerprint of an excerpt at a random offset, as the transcoder would see it; and fpcalc's ms."""
    length = int(config.excerpt_s * SAMPLE_RATE)
    start = int(rng.integers(0, len(audio) - length + 1))
    path = write_wav(work / "excerpt.wav", audio[start:start + length])
    if config.aac_kbps:
        encoded = work / "excerpt.m4a"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-c:a", "aac",
                        "-b:a", f"{config.aac_kbps}k", str(encoded)], check=True, timeout=60)
        path = encoded
    started = time.perf_counter()
    fingerprint = fingerprint_file(path)
    return fingerprint, (time.perf_counter() - started) * 1000


def run_music_bench(config: MusicBenchConfig) -> dict[str, Any]:
    """Generate, catalogue, query; returns the rates, score ranges and timings (JSON-able)."""
    rng = np.random.default_rng(config.seed)
    catalogue: list[CatalogueEntry] = []
    queries: list[tuple[str | None, Fingerprint]] = []
    fpcalc_ms: list[float] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fyp-bench-music-") as tmp:
        work = Path(tmp)
        for i in range(config.tracks):
            audio = synth_track(int(np.random.SeedSequence([config.seed, 0, i]).generate_state(1)[0]), TRACK_S)
            music_id = f"bench-{i}"
            catalogue.append(CatalogueEntry(music_id=music_id, title=f"generated {i}", decision="mute",
                                            fingerprint=fingerprint_file(write_wav(work / "track.wav", audio))))
            for _ in range(config.excerpts_per_track):
                fingerprint, ms = _query(audio, rng, config, work)
                queries.append((music_id, fingerprint))
                fpcalc_ms.append(ms)
        for j in range(config.unrelated):
            audio = synth_track(int(np.random.SeedSequence([config.seed, 1, j]).generate_state(1)[0]), UNRELATED_S)
            fingerprint, ms = _query(audio, rng, config, work)
            queries.append((None, fingerprint))
            fpcalc_ms.append(ms)
    match_ms: list[float] = []
    match_cpu_ms: list[float] = []  # this process's CPU time: wall time grows when others share the cores
    hits = wrong = false_matches = 0
    hit_scores: list[float] = []
    unrelated_scores: list[float] = []
    for expected, fingerprint in queries:
        t0, cpu0 = time.perf_counter(), time.process_time()
        found = match(fingerprint, catalogue)
        match_ms.append((time.perf_counter() - t0) * 1000)
        match_cpu_ms.append((time.process_time() - cpu0) * 1000)
        # The best score even below the threshold, to show the margin on both sides.
        best = match(fingerprint, catalogue, threshold=0.0)
        if expected is None:
            false_matches += found is not None
            unrelated_scores.append(best.score if best else 0.0)
        else:
            hits += found is not None and found.music_id == expected
            wrong += found is not None and found.music_id != expected
            hit_scores.append(best.score if best and best.music_id == expected else 0.0)
    excerpts = config.tracks * config.excerpts_per_track
    return {
        "config": asdict(config),
        "excerpts": excerpts,
        "hit_rate": round(hits / excerpts, 4),
        "wrong_track_rate": round(wrong / excerpts, 4),
        "unrelated": config.unrelated,
        "false_match_rate": round(false_matches / config.unrelated, 4) if config.unrelated else None,
        "false_matches": false_matches,
        "threshold": MATCH_THRESHOLD,
        "excerpt_score_min": round(min(hit_scores), 4),
        "excerpt_score_p50": round(float(np.median(hit_scores)), 4),
        "unrelated_score_max": round(max(unrelated_scores), 4) if unrelated_scores else None,
        "unrelated_score_p50": round(float(np.median(unrelated_scores)), 4) if unrelated_scores else None,
        "match_ms": latency_summary(match_ms),
        "match_cpu_ms": latency_summary(match_cpu_ms),
        "fpcalc_ms": latency_summary(fpcalc_ms),
        "seconds": round(time.monotonic() - started, 1),
    }
