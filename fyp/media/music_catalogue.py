"""The music catalogue as one JSON object in S3: its codec, safe edits, and the copy every worker replica keeps.

Object: `music/catalogue.json` in the media bucket (`FYP_MEDIA_BUCKET`; the CDN serves `videos/` only, so the
catalogue is never public). Body:

    {"version": 2, "revision": 7, "tracks": [{"music_id", "title", "decision", "fingerprint": "cp1:..."}]}

`revision` counts the edits; fingerprints use the event text form (`encode_fingerprint`), about 7.7 kB per
3-minute track. A missing object is an empty catalogue at revision 0.

Edits (`add`, `remove`) are read-modify-write with a conditional put: `If-Match: <ETag read>` (or
`If-None-Match: *` for the first write), which SeaweedFS honours (412 PreconditionFailed on a changed object;
tests/integration/test_music_catalogue.py::test_a_concurrent_edit_is_refused_not_lost). A lost race re-reads
and retries, so two concurrent `fyp music add` both land.

Workers hold a `SharedCatalogue`: `entries()` returns the catalogue in memory and, at most every
`min_interval_s` (`FYP_MUSIC_RELOAD_S`, default 5 s), HEADs the object first and reloads when its ETag changed.
A failed check or reload keeps the last good catalogue and logs a warning, so an S3 hiccup does not stop
moderation; the first load, at worker start, must succeed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from fyp.media.fingerprint import CatalogueEntry, decode_fingerprint, encode_fingerprint, validate_music_id

__all__ = [
    "CATALOGUE_KEY",
    "EMPTY",
    "MAX_CATALOGUE_BYTES",
    "MAX_TRACKS",
    "Catalogue",
    "CatalogueConflict",
    "CatalogueReader",
    "CatalogueSource",
    "S3CatalogueStore",
    "SharedCatalogue",
    "add_track",
    "decode_catalogue",
    "encode_catalogue",
    "remove_track",
    "tracks_of",
    "worker_catalogue",
]

log = logging.getLogger(__name__)

CATALOGUE_KEY = "music/catalogue.json"
VERSION = 2
# Matching is a brute-force slide over every track (fyp.media.fingerprint.match), per 3-minute track about
# 0.7 CPU ms for a 10 s video, 3 ms for 60 s, 13 ms for 180 s (docs/MODERATION.md): 1,000 tracks cost a 180 s
# video ~13 s on each of the two workers. Beyond that, index sub-fingerprints first (as AcoustID's server does).
MAX_TRACKS = 1_000
MAX_CATALOGUE_BYTES = 16 * 1024 * 1024  # 1,000 x ~8 kB, with room
_EDIT_ATTEMPTS = 5


class CatalogueConflict(RuntimeError):
    """The object changed between our read and our conditional write, every time we tried."""


@dataclass(frozen=True, kw_only=True)
class Catalogue:
    """One revision of the catalogue; `etag` is the S3 ETag it was read with (None: no object yet)."""

    revision: int
    tracks: tuple[CatalogueEntry, ...]
    etag: str | None = None

    def find(self, music_id: str) -> CatalogueEntry | None:
        return next((t for t in self.tracks if t.music_id == music_id), None)


EMPTY = Catalogue(revision=0, tracks=())


def encode_catalogue(catalogue: Catalogue) -> bytes:
    """The object's body (the ETag is not part of it).

    >>> decode_catalogue(encode_catalogue(EMPTY)) == EMPTY
    True
    """
    tracks = [{"music_id": t.music_id, "title": t.title, "decision": t.decision,
               "fingerprint": encode_fingerprint(t.fingerprint)} for t in catalogue.tracks]
    return json.dumps({"version": VERSION, "revision": catalogue.revision, "tracks": tracks},
                      separators=(",", ":")).encode()


def decode_catalogue(raw: bytes, *, etag: str | None = None) -> Catalogue:
    """Inverse of `encode_catalogue`; ValueError (naming the track) for a body it did not write."""
    if len(raw) > MAX_CATALOGUE_BYTES:
        raise ValueError(f"catalogue is {len(raw):,} bytes, more than {MAX_CATALOGUE_BYTES:,}")
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError(f"unsupported catalogue version {data.get('version') if isinstance(data, dict) else data!r}")
    rows = data.get("tracks")
    revision = data.get("revision")
    if not isinstance(rows, list) or not isinstance(revision, int) or revision < 0:
        raise ValueError("catalogue needs a list of tracks and a non-negative integer revision")
    if len(rows) > MAX_TRACKS:
        raise ValueError(f"catalogue has {len(rows):,} tracks, more than {MAX_TRACKS:,}")
    tracks = []
    for i, row in enumerate(rows):
        try:
            tracks.append(CatalogueEntry(music_id=row["music_id"], title=row["title"], decision=row["decision"],
                                         fingerprint=decode_fingerprint(row["fingerprint"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"catalogue track {i}: {exc!r}") from exc
    ids = [t.music_id for t in tracks]
    if len(set(ids)) != len(ids):
        raise ValueError("catalogue has duplicate music_ids")
    return Catalogue(revision=revision, tracks=tuple(tracks), etag=etag)


def add_track(catalogue: Catalogue, entry: CatalogueEntry) -> Catalogue:
    """The next revision with `entry` added; ValueError for a music_id already there or a full catalogue."""
    if catalogue.find(entry.music_id) is not None:
        raise ValueError(f"music_id {entry.music_id!r} is already in the catalogue (remove it first)")
    if len(catalogue.tracks) >= MAX_TRACKS:
        raise ValueError(f"the catalogue is full ({MAX_TRACKS:,} tracks)")
    return replace(catalogue, revision=catalogue.revision + 1, tracks=(*catalogue.tracks, entry))


def remove_track(catalogue: Catalogue, music_id: str) -> Catalogue:
    """The next revision without `music_id`; LookupError for an id not in the catalogue."""
    validate_music_id(music_id)
    if catalogue.find(music_id) is None:
        raise LookupError(f"music_id {music_id!r} is not in the catalogue")
    return replace(catalogue, revision=catalogue.revision + 1,
                   tracks=tuple(t for t in catalogue.tracks if t.music_id != music_id))


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3CatalogueStore:
    """The catalogue object in one bucket, over a boto3 S3 client (`fyp.media.publish.make_s3_client`)."""

    def __init__(self, client: Any, bucket: str, key: str = CATALOGUE_KEY) -> None:
        self._client, self._bucket, self._key = client, bucket, key

    def etag(self) -> str | None:
        """The object's current ETag (one HEAD), None when there is no catalogue yet."""
        from botocore.exceptions import ClientError

        try:
            return str(self._client.head_object(Bucket=self._bucket, Key=self._key)["ETag"])
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def read(self) -> Catalogue:
        from botocore.exceptions import ClientError

        try:
            got = self._client.get_object(Bucket=self._bucket, Key=self._key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return EMPTY
            raise
        return decode_catalogue(got["Body"].read(), etag=str(got["ETag"]))

    def edit(self, change: Callable[[Catalogue], Catalogue]) -> Catalogue:
        """Read, apply `change`, write only if nobody wrote in between; on a lost race, read again and retry
        (`_EDIT_ATTEMPTS` times, then CatalogueConflict). Errors `change` raises (a duplicate id) propagate."""
        from botocore.exceptions import ClientError

        for attempt in range(_EDIT_ATTEMPTS):
            current = self.read()
            updated = change(current)
            condition = {"IfMatch": current.etag} if current.etag else {"IfNoneMatch": "*"}
            try:
                put = self._client.put_object(Bucket=self._bucket, Key=self._key, Body=encode_catalogue(updated),
                                              ContentType="application/json", CacheControl="no-cache", **condition)
            except ClientError as exc:
                if _code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                    raise
                log.info("catalogue changed while editing (attempt %d); reading it again", attempt + 1)
                time.sleep(0.05 * (attempt + 1))
                continue
            return replace(updated, etag=str(put["ETag"]))
        raise CatalogueConflict(f"the catalogue kept changing; gave up after {_EDIT_ATTEMPTS} attempts")


class CatalogueReader(Protocol):
    """What a `SharedCatalogue` reads through (`S3CatalogueStore` in the workers)."""

    def etag(self) -> str | None: ...

    def read(self) -> Catalogue: ...


class SharedCatalogue:
    """What a worker replica matches against: the S3 catalogue, reloaded when its ETag changes.

    min_interval_s: the least time between two ETag checks (default 5 s); `entries()` before each event is then
    at most one HEAD per interval. clock: seconds, monotonic (a parameter so tests need not sleep).
    """

    def __init__(self, store: CatalogueReader, *, min_interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._current = EMPTY
        self._checked_at: float | None = None

    @property
    def revision(self) -> int:
        return self._current.revision

    def load(self) -> Catalogue:
        """Read the catalogue now; errors propagate (a worker must not start without one)."""
        self._current = self._store.read()
        self._checked_at = self._clock()
        log.info("music catalogue revision %d: %d tracks", self._current.revision, len(self._current.tracks))
        return self._current

    def entries(self) -> Sequence[CatalogueEntry]:
        """The tracks to match; reloads first when the interval has passed and the object changed."""
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._min_interval_s:
            return self._current.tracks
        self._checked_at = now
        try:
            if self._store.etag() != self._current.etag:
                self.load()
        except Exception:  # S3 down or a bad body: keep matching against the last good one
            log.warning("music catalogue reload failed; keeping revision %d (%d tracks)", self._current.revision,
                        len(self._current.tracks), exc_info=True)
        return self._current.tracks


CatalogueSource = Sequence[CatalogueEntry] | SharedCatalogue


def tracks_of(catalogue: CatalogueSource) -> Sequence[CatalogueEntry]:
    """The tracks to match now: a `SharedCatalogue`'s current ones, or a fixed list as given (unit tests)."""
    return catalogue.entries() if isinstance(catalogue, SharedCatalogue) else catalogue


def worker_catalogue(settings: Any) -> SharedCatalogue:
    """The one way workers load the catalogue: the S3 object of `settings`' media bucket, checked for changes at
    most every `FYP_MUSIC_RELOAD_S` seconds (default 5), loaded once now (errors propagate)."""
    import os

    from fyp.media.publish import make_s3_client

    interval = float(os.environ.get("FYP_MUSIC_RELOAD_S", "5"))
    if not 0 <= interval <= 3600:
        raise ValueError(f"FYP_MUSIC_RELOAD_S must be 0..3600 seconds, got {interval}")
    shared = SharedCatalogue(S3CatalogueStore(make_s3_client(settings), settings.media_bucket),
                             min_interval_s=interval)
    shared.load()
    return shared
