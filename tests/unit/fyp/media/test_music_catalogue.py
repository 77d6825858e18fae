"""The music catalogue's pure parts: the S3 object's codec, edits, the workers' reload rule, the CLI's input
checks, and a 10 s excerpt of a generated 3-minute song matching it (and another song not). The S3 side (the
conditional put, replicas reloading) is tests/integration/test_music_catalogue.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fyp.bench.music_synth import SAMPLE_RATE, synth_track, write_wav
from fyp.cli import app
from fyp.media.fingerprint import CatalogueEntry, Fingerprint, build_entry, fingerprint_file, match
from fyp.media.music_catalogue import (
    EMPTY,
    MAX_TRACKS,
    Catalogue,
    SharedCatalogue,
    add_track,
    decode_catalogue,
    encode_catalogue,
    remove_track,
)

runner = CliRunner()


def _entry(music_id: str, decision: str = "mute") -> CatalogueEntry:
    return CatalogueEntry(music_id=music_id, title=f"title of {music_id}", decision=decision,  # type: ignore[arg-type]
                          fingerprint=Fingerprint(duration_s=2.5, values=(1, 0xFFFFFFFF, 7)))


def test_codec_round_trips() -> None:
    catalogue = Catalogue(revision=3, tracks=(_entry("a"), _entry("b", "block")))
    raw = encode_catalogue(catalogue)
    assert json.loads(raw)["tracks"][0]["fingerprint"].startswith("cp1:2.5:")
    assert decode_catalogue(raw, etag='"e1"') == Catalogue(revision=3, tracks=catalogue.tracks, etag='"e1"')


@pytest.mark.parametrize(("body", "problem"), [
    ({"version": 1, "tracks": []}, "version"),
    ({"version": 2, "revision": -1, "tracks": []}, "revision"),
    ({"version": 2, "revision": 1, "tracks": [{"music_id": "a/b", "title": "t", "decision": "mute",
                                               "fingerprint": "cp1:1:AQAAAA=="}]}, "track 0"),
    ({"version": 2, "revision": 1, "tracks": [{"music_id": "a", "title": "t", "decision": "mute"}]}, "track 0"),
    ({"version": 2, "revision": 1, "tracks": [{"music_id": "a", "title": "t", "decision": "mute",
                                               "fingerprint": "cp1:1:AQAAAA=="}] * 2}, "duplicate"),
    ({"version": 2, "revision": 1, "tracks": [{}] * (MAX_TRACKS + 1)}, "more than"),
])
def test_decode_refuses_what_it_did_not_write(body: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        decode_catalogue(json.dumps(body).encode())


def test_edits_bump_the_revision_and_refuse_duplicates_and_unknown_ids() -> None:
    one = add_track(EMPTY, _entry("a"))
    two = add_track(one, _entry("b"))
    assert (one.revision, two.revision, [t.music_id for t in two.tracks]) == (1, 2, ["a", "b"])
    with pytest.raises(ValueError, match="already in the catalogue"):
        add_track(two, _entry("a", "block"))
    assert remove_track(two, "a") == Catalogue(revision=3, tracks=(two.tracks[1],))
    with pytest.raises(LookupError, match="not in the catalogue"):
        remove_track(two, "zzz")
    with pytest.raises(ValueError, match="A-Za-z0-9"):
        remove_track(two, "../x")
    full = Catalogue(revision=9, tracks=tuple(_entry(f"t{i}") for i in range(MAX_TRACKS)))
    with pytest.raises(ValueError, match="full"):
        add_track(full, _entry("one-more"))


class _Object:
    """The catalogue object as a replica sees it: an ETag and a body that an edit or an outage changes."""

    def __init__(self) -> None:
        self.catalogue, self.heads, self.down = EMPTY, 0, False

    def put(self, catalogue: Catalogue) -> None:
        self.catalogue = Catalogue(revision=catalogue.revision, tracks=catalogue.tracks,
                                   etag=f'"{catalogue.revision}"')

    def etag(self) -> str | None:
        self.heads += 1
        if self.down:
            raise ConnectionError("S3 is down")
        return self.catalogue.etag

    def read(self) -> Catalogue:
        return self.catalogue


def test_replicas_reload_on_change_at_most_every_interval() -> None:
    obj, now = _Object(), [0.0]
    shared = SharedCatalogue(obj, min_interval_s=5, clock=lambda: now[0])
    shared.load()
    obj.put(add_track(EMPTY, _entry("a")))
    assert shared.entries() == ()  # checked at load, 0 s ago: no HEAD yet
    assert obj.heads == 0
    now[0] = 5.0
    assert [t.music_id for t in shared.entries()] == ["a"]
    assert [t.music_id for t in shared.entries()] == ["a"] and obj.heads == 1  # within the interval: no HEAD
    now[0] = 10.0
    shared.entries()
    assert obj.heads == 2 and shared.revision == 1  # unchanged ETag: no reload


def test_a_failed_reload_keeps_the_last_good_catalogue(caplog: pytest.LogCaptureFixture) -> None:
    obj, now = _Object(), [0.0]
    obj.put(add_track(EMPTY, _entry("a")))
    shared = SharedCatalogue(obj, min_interval_s=1, clock=lambda: now[0])
    shared.load()
    obj.down, now[0] = True, 2.0
    assert [t.music_id for t in shared.entries()] == ["a"]
    assert "keeping revision 1" in caplog.text
    obj.down, now[0] = False, 4.0
    obj.put(remove_track(obj.catalogue, "a"))
    assert shared.entries() == () and shared.revision == 2


@pytest.mark.parametrize(("args", "problem"), [
    (["--id", "ok", "--title", "t", "--policy", "maybe"], "--policy must be one of allow, mute, block"),
    (["--id", "no spaces", "--title", "t", "--policy", "mute"], "A-Za-z0-9"),
    (["--id", "ok", "--title", "t" * 201, "--policy", "mute"], "at most 200"),
])
def test_music_add_refuses_bad_input_before_reading_anything(args: list[str], problem: str, tmp_path: Path) -> None:
    (tmp_path / "song.wav").write_bytes(b"")
    result = runner.invoke(app, ["music", "add", str(tmp_path / "song.wav"), *args])
    assert result.exit_code == 1
    assert problem in " ".join(result.stderr.split())


def test_music_add_refuses_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["music", "add", str(tmp_path / "absent.wav"), "--id", "a", "--title", "t",
                                 "--policy", "mute"])
    assert result.exit_code == 1 and "no such file" in " ".join(result.stderr.split())
    (tmp_path / "noise.wav").write_bytes(b"not audio at all")
    result = runner.invoke(app, ["music", "add", str(tmp_path / "noise.wav"), "--id", "a", "--title", "t",
                                 "--policy", "mute"])
    assert result.exit_code == 1 and "fpcalc failed" in " ".join(result.stderr.split())


def test_a_10s_excerpt_of_a_3_minute_song_matches_it_and_another_song_does_not(tmp_path: Path) -> None:
    song = synth_track(11, 180)
    entry = build_entry(write_wav(tmp_path / "song.wav", song), music_id="song", title="Song", decision="mute")
    assert 175 < entry.fingerprint.duration_s < 185
    start = int(131.3 * SAMPLE_RATE)  # late in the song, off Chromaprint's frame grid
    excerpt = fingerprint_file(write_wav(tmp_path / "excerpt.wav", song[start:start + 10 * SAMPLE_RATE]))
    found = match(excerpt, [entry])
    assert found is not None and found.music_id == "song" and found.score > 0.8
    other = synth_track(12, 30)
    assert match(fingerprint_file(write_wav(tmp_path / "other.wav", other[5 * SAMPLE_RATE:15 * SAMPLE_RATE])),
                 [entry]) is None
