"""`fyp music add|list|remove`: edit the music catalogue in S3 (`fyp.media.music_catalogue`), and
`fyp bench music`: how well the matcher finds catalogued tracks in excerpts and ignores other music.

Every running transcoder and moderator picks an edit up within `FYP_MUSIC_RELOAD_S` seconds (default 5),
without a restart (docs/MODERATION.md, "The music catalogue").
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import typer
from rich.table import Table

from fyp.commands.output import console, fail_cleanly, print_json
from fyp.config import load_settings
from fyp.media.fingerprint import (
    MAX_FINGERPRINT_SECONDS,
    CatalogueEntry,
    Decision,
    build_entry,
    validate_music_id,
    validate_title,
)
from fyp.media.music_catalogue import (
    Catalogue,
    CatalogueConflict,
    S3CatalogueStore,
    add_track,
    remove_track,
)

__all__ = ["register"]

music_group = typer.Typer(help="The music catalogue (licensed tracks: allow, mute or block), kept in S3.",
                          no_args_is_help=True)


def _store() -> S3CatalogueStore:
    from fyp.media.publish import make_s3_client

    settings = load_settings()
    return S3CatalogueStore(make_s3_client(settings), settings.media_bucket)


def _row(entry: CatalogueEntry) -> dict[str, object]:
    return {"music_id": entry.music_id, "title": entry.title, "policy": entry.decision,
            "fingerprint_s": round(entry.fingerprint.duration_s, 1), "items": len(entry.fingerprint.values)}


@music_group.command("add")
def add(
    file: Path = typer.Argument(..., help="The reference recording (any format ffmpeg/fpcalc reads)."),
    music_id: str = typer.Option(..., "--id", help="Catalogue id: 1-64 characters of [A-Za-z0-9._-]."),
    title: str = typer.Option(..., "--title", help="Display title, at most 200 characters."),
    policy: str = typer.Option(..., "--policy", help="allow | mute | block: what to do with a video using it."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fingerprint FILE (its first 180 s) and add it to the catalogue; refused if the id is already there."""
    with fail_cleanly(ValueError, RuntimeError, FileNotFoundError, CatalogueConflict):
        # The cheap checks first: fpcalc reads up to MAX_FINGERPRINT_SECONDS of audio.
        if policy not in get_args(Decision):
            raise ValueError(f"--policy must be one of {', '.join(get_args(Decision))}, got {policy!r}")
        validate_music_id(music_id)
        validate_title(title)
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no such file")
        entry = build_entry(file, music_id=music_id, title=title, decision=policy)  # type: ignore[arg-type]
        updated = _store().edit(lambda current: add_track(current, entry))
    result = {**_row(entry), "revision": updated.revision, "tracks": len(updated.tracks)}
    if as_json:
        print_json(result)
    else:
        console.print(f"[green]added[/] {music_id} ({policy}, {entry.fingerprint.duration_s:.0f} s fingerprinted,"
                      f" at most {MAX_FINGERPRINT_SECONDS}); catalogue revision {updated.revision}, "
                      f"{len(updated.tracks)} tracks")


@music_group.command("remove")
def remove(
    music_id: str = typer.Argument(..., help="The catalogue id to remove."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Remove a track; videos published with it keep their verdict (new uploads stop matching it)."""
    with fail_cleanly(ValueError, LookupError, CatalogueConflict):
        updated = _store().edit(lambda current: remove_track(current, music_id))
    if as_json:
        print_json({"removed": music_id, "revision": updated.revision, "tracks": len(updated.tracks)})
    else:
        console.print(f"[green]removed[/] {music_id}; catalogue revision {updated.revision}, "
                      f"{len(updated.tracks)} tracks")


@music_group.command("list")
def list_tracks(as_json: bool = typer.Option(False, "--json", help="Print the catalogue as JSON.")) -> None:
    """The catalogue's tracks and their policies."""
    with fail_cleanly(ValueError):
        catalogue: Catalogue = _store().read()
    rows = [_row(t) for t in catalogue.tracks]
    if as_json:
        print_json({"revision": catalogue.revision, "tracks": rows})
        return
    table = Table("music_id", "title", "policy", "fingerprint_s", title=f"music catalogue, revision "
                  f"{catalogue.revision}: {len(rows)} tracks")
    for row in rows:
        table.add_row(str(row["music_id"]), str(row["title"]), str(row["policy"]), str(row["fingerprint_s"]))
    console.print(table)


def bench_music(
    tracks: int = typer.Option(20, "--tracks", min=1, max=500, help="Catalogued 3-minute tracks."),
    excerpts: int = typer.Option(5, "--excerpts", min=1, max=50, help="10 s excerpts tested per catalogued track."),
    unrelated: int = typer.Option(200, "--unrelated", min=0, max=2000, help="Generated tracks not catalogued."),
    excerpt_s: float = typer.Option(10.0, "--excerpt-s", min=3, max=60, help="Excerpt length, seconds."),
    aac_kbps: int = typer.Option(0, "--aac-kbps", min=0, max=320,
                                 help="Re-encode every excerpt to AAC at this bitrate first (0: WAV as cut)."),
    seed: int = typer.Option(7, "--seed", help="Seed of the generated music and the offsets."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Hit rate on excerpts of catalogued tracks and false-match rate on unrelated tracks (local: no stack)."""
    from fyp.bench.music import MusicBenchConfig, run_music_bench

    config = MusicBenchConfig(tracks=tracks, excerpts_per_track=excerpts, unrelated=unrelated,
                              excerpt_s=excerpt_s, aac_kbps=aac_kbps, seed=seed)
    with console.status("generating, fingerprinting and matching …"):
        result = run_music_bench(config)
    if as_json:
        print_json(result)
        return
    table = Table("metric", "value", title="music matching: excerpts of catalogued tracks vs unrelated music")
    for key, value in result.items():
        table.add_row(key, str(value))
    console.print(table)


def register(app: typer.Typer, *, bench: typer.Typer) -> None:
    """Add the `music` group to the app and `music` to the `bench` group."""
    app.add_typer(music_group, name="music")
    bench.command("music")(bench_music)
