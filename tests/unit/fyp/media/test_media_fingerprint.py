"""Chromaprint matching on ffmpeg-made audio: the same music, re-encoded or cut, matches; other audio not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fyp.media.fingerprint import (
    CatalogueEntry,
    Fingerprint,
    best_alignment,
    build_entry,
    decode_fingerprint,
    encode_fingerprint,
    fingerprint_file,
    match,
)
from fyp.media.music_catalogue import Catalogue, decode_catalogue, encode_catalogue

# Two sweeping tones: structured like music, unlike a pure sine (whose fingerprint is nearly constant).
MELODY = "0.5*sin(2*PI*(300+200*sin(2*PI*0.3*t))*t)+0.3*sin(2*PI*(800+300*sin(2*PI*0.7*t))*t)"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio")
    _ffmpeg("-f", "lavfi", "-i", f"aevalsrc='{MELODY}':s=44100:d=12", str(d / "track.wav"))
    _ffmpeg("-i", str(d / "track.wav"), "-c:a", "aac", "-b:a", "64k", str(d / "reencoded.m4a"))
    # A 7 s excerpt starting 3 s in, as a video would use a piece of a song.
    _ffmpeg("-ss", "3", "-t", "7", "-i", str(d / "track.wav"), "-c:a", "aac", str(d / "clip.m4a"))
    _ffmpeg(
        "-f", "lavfi", "-i", "anoisesrc=d=12:c=pink:seed=7:a=0.5", "-f", "lavfi", "-i", "sine=f=500:d=12",
        "-filter_complex", "amix=inputs=2", "-c:a", "aac", str(d / "other.m4a"),
    )
    return {p.stem: p for p in d.iterdir()}


@pytest.fixture(scope="module")
def catalogue(audio: dict[str, Path]) -> tuple[CatalogueEntry, ...]:
    entry = build_entry(audio["track"], music_id="m-track", title="Sweeps", decision="mute")
    # Through the S3 object's codec, as the workers read it.
    return decode_catalogue(encode_catalogue(Catalogue(revision=1, tracks=(entry,)))).tracks


def test_catalogue_round_trips(catalogue: tuple[CatalogueEntry, ...], audio: dict[str, Path]) -> None:
    (entry,) = catalogue
    assert (entry.music_id, entry.title, entry.decision) == ("m-track", "Sweeps", "mute")
    assert entry.fingerprint == fingerprint_file(audio["track"])
    assert len(entry.fingerprint.values) > 50 and 11 < entry.fingerprint.duration_s < 13


@pytest.mark.parametrize("name", ["track", "reencoded", "clip"])
def test_same_music_matches(catalogue: tuple[CatalogueEntry, ...], audio: dict[str, Path], name: str) -> None:
    found = match(fingerprint_file(audio[name]), catalogue)
    assert found is not None
    assert (found.music_id, found.decision) == ("m-track", "mute")
    assert found.score > 0.8


def test_other_audio_does_not_match(catalogue: tuple[CatalogueEntry, ...], audio: dict[str, Path]) -> None:
    assert match(fingerprint_file(audio["other"]), catalogue) is None


def test_clip_is_found_at_its_offset(audio: dict[str, Path]) -> None:
    track, clip = fingerprint_file(audio["track"]), fingerprint_file(audio["clip"])
    ber, offset = best_alignment(track.values, clip.values)
    assert ber < 0.1
    assert abs(offset - 3 * 8.07) <= 2  # 3 s in, at ~8 sub-fingerprints per second


def test_bit_error_rate() -> None:
    assert best_alignment([0, 0, 0], [0, 0, 0], min_overlap=3) == (0.0, 0)
    assert best_alignment([0xFFFFFFFF] * 4, [0] * 4, min_overlap=4) == (1.0, 0)
    assert best_alignment([0x0000FFFF] * 4, [0] * 4, min_overlap=4) == (0.5, 0)
    assert best_alignment([5, 6, 7, 8, 9], [7, 8, 9], min_overlap=3) == (0.0, 2)
    assert best_alignment([], [1, 2], min_overlap=3) == (1.0, 0)


def test_fingerprint_text_round_trips() -> None:
    fingerprint = Fingerprint(duration_s=12.5, values=(0, 1, 0xFFFFFFFF, 3_711_863_836))
    text = encode_fingerprint(fingerprint)
    assert text.startswith("cp1:12.5:")
    assert decode_fingerprint(text) == fingerprint
    with pytest.raises(ValueError, match="cp1"):
        decode_fingerprint("AQADtEmUaEkS")


@pytest.mark.parametrize(("fields", "problem"), [
    ({"decision": "maybe"}, "decision"),
    ({"music_id": ""}, "empty"),
    ({"music_id": "a/b"}, "A-Za-z0-9"),
    ({"music_id": "-lead"}, "starting with"),
    ({"music_id": "x" * 65}, "longer than 64"),
    ({"title": "t" * 201}, "at most 200"),
    ({"title": "two\nlines"}, "control character"),
    ({"fingerprint": Fingerprint(duration_s=1, values=())}, "empty fingerprint"),
    ({"fingerprint": Fingerprint(duration_s=400, values=(1,) * 3300)}, "longer than"),
])
def test_catalogue_entries_validate_themselves(fields: dict, problem: str) -> None:
    good = {"music_id": "m-1.v2_x", "title": "t", "decision": "mute",
            "fingerprint": Fingerprint(duration_s=1, values=(1, 2))}
    CatalogueEntry(**good)
    with pytest.raises(ValueError, match=problem):
        CatalogueEntry(**(good | fields))


def test_sliding_matches_a_brute_force_slide() -> None:
    # The vectorised slide against the obvious loop, on random data with a planted copy.
    import numpy as np

    rng = np.random.default_rng(3)
    a = rng.integers(0, 2**32, 300, dtype=np.uint64).astype(np.uint32)
    b = a[120:180] ^ (rng.random(60) < 0.05).astype(np.uint32)  # one bit flipped in ~5 % of items
    ber, offset = best_alignment(a.tolist(), b.tolist(), min_overlap=40)
    assert offset == 120 and ber < 0.01
    loop = min((float(np.bitwise_count(a[max(0, o):o + 60] ^ b[max(0, -o):max(0, -o) + len(a[max(0, o):o + 60])])
                                   .sum()) / (32 * len(a[max(0, o):o + 60])), o)
               for o in range(-20, 261))
    assert (ber, offset) == loop
    assert best_alignment(b.tolist(), a.tolist(), min_overlap=40) == (ber, -120)  # the clip first: same alignment
