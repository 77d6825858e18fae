"""`fyp bench near-duplicates` on a tiny generated set: clips are deterministic, rates and timings are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

import fyp.bench.near_duplicates as bench
from fyp.bench.near_duplicate_clips import EDITS, clip_maker


def test_a_source_is_a_function_of_its_seed(tmp_path: Path) -> None:
    first, _ = clip_maker(tmp_path / "a", 1.0)
    second, _ = clip_maker(tmp_path / "b", 1.0)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert first(3).read_bytes() == second(3).read_bytes()
    assert first(3).read_bytes() != first(4).read_bytes()


def test_a_tiny_run_detects_mirrors_and_matches_nothing_unrelated(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = tuple(e for e in EDITS if e.name in ("mirror", "crop_5pct"))
    monkeypatch.setattr(bench, "EDITS", kept)
    # Seeds 2 and 3 (blurred Life and cellular automaton): detailed enough that PDQ is stable under these edits;
    # seed 1 (drifting gradients) is among the benchmark's misses of a 5 % crop.
    result = bench.run_near_duplicates(sources=2, unrelated=1, duration_s=2.0, seed=2, padding=10)
    assert result.detection == {"mirror": 1.0, "crop_5pct": 1.0}
    assert result.false_match_rate == 0.0 and result.false_matches == [] and result.wrong_source == 0
    assert result.hashing["samples"] == 2 + 2 * 2 + 1
    assert result.query["samples"] == 2 * 2 + 2 + 1


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="sources >= 2"):
        bench.run_near_duplicates(sources=1)
