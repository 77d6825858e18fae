"""Block a video's published media after a takedown, and unblock it after a counter-notice.

Blocking moves every object under `videos/{video_id}/` to `quarantine/videos/{video_id}/` in the same bucket
(copy, then delete the original), so a read of any published key fails (404) while the bytes stay for a restore.
Why move rather than delete and re-transcode on restore: a restore then puts back the very keys that Redis,
TranscodeCompleted and every client already hold (a re-transcode would publish a new run under new keys and
need the whole pipeline again), and it costs a copy per object instead of minutes of ffmpeg
(docs/MODERATION.md, "Takedowns", has the measurement). The quarantine prefix must never be served: the media
CDN or bucket policy exposes `videos/` only.

Order, so a reader never follows a pointer to something already gone: the pointers (`_manifest*.json`) go first,
then the playlists (`.m3u8`, `.mpd`), then the segments, then everything else (cover, posters, logs). A restore
goes the other way: segments and pictures come back before the playlists, and the pointers last.

A transcode can race a takedown: a redelivered request, or the second stage already running, could publish
under `videos/{video_id}/` after the move. So a takedown first writes a marker, `takedowns/{video_id}.json`, and
only then moves; the transcoder checks the marker before it starts and again after it publishes, and moves what
it just published when the marker is there (`is_blocked`; workers/transcoder.py). Every object is then covered:
either it existed when the takedown listed the prefix, or it was written before the transcoder's second check,
which sees the marker. A restore deletes the marker first, then moves back.

Both directions are idempotent: a retry after a crash finds the objects it has not moved yet and moves only those;
a retry after success moves nothing. Copy before delete means a crash never loses an object: at worst it is in
both places, and the retry finishes the move.

>>> [group for group, _ in removal_order(["videos/v/v1/r/stream/seg_0_00001.m4s", "videos/v/v1/_manifest.json",
...                                        "videos/v/v1/r/stream/master.m3u8", "videos/v/v1/r/cover.jpg"])]
['pointers', 'playlists', 'segments', 'other']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from fyp.media.keys import validate_key, video_root
from fyp.media.publish import StoredObject

__all__ = [
    "BLOCK_MARKER_ROOT",
    "QUARANTINE_ROOT",
    "Group",
    "MovableStore",
    "Moved",
    "block_marker_key",
    "block_video",
    "is_blocked",
    "key_group",
    "quarantine_key",
    "removal_order",
    "restore_video",
]

QUARANTINE_ROOT = "quarantine/"
BLOCK_MARKER_ROOT = "takedowns/"
Group = Literal["pointers", "playlists", "segments", "other"]
_GROUPS: tuple[Group, ...] = ("pointers", "playlists", "segments", "other")
_PLAYLIST_SUFFIXES = (".m3u8", ".mpd")
_SEGMENT_SUFFIXES = (".m4s", ".mp4", ".m4a", ".ts", ".webm")


class MovableStore(Protocol):
    """The object-storage operations a move needs (`fyp.media.publish.S3ObjectStore` has them)."""

    def list_objects(self, prefix: str) -> Iterator[StoredObject]: ...

    def get_bytes(self, key: str) -> bytes | None: ...

    def create_bytes(self, key: str, data: bytes, *, content_type: str) -> bool: ...

    def copy(self, source: str, destination: str) -> None: ...

    def delete(self, keys: Sequence[str]) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Moved:
    """What one block or restore did: the keys moved (their published names), in the order moved."""

    video_id: str
    direction: Literal["block", "restore"]
    keys: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.keys)


def key_group(key: str) -> Group:
    """Which removal group a published key belongs to (see the module docstring for the order).

    >>> key_group("videos/v/v1/_manifest.full.json"), key_group("videos/v/v1/r/stream/init_0.m4s")
    ('pointers', 'segments')
    """
    name = key.rsplit("/", 1)[-1]
    if name.startswith("_manifest") and name.endswith(".json"):
        return "pointers"
    if name.endswith(_PLAYLIST_SUFFIXES):
        return "playlists"
    if name.endswith(_SEGMENT_SUFFIXES):
        return "segments"
    return "other"


def removal_order(keys: Iterable[str]) -> list[tuple[Group, list[str]]]:
    """The keys grouped and ordered for removal: pointers, playlists, segments, other; empty groups left out."""
    grouped: dict[Group, list[str]] = {group: [] for group in _GROUPS}
    for key in keys:
        grouped[key_group(key)].append(key)
    return [(group, sorted(grouped[group])) for group in _GROUPS if grouped[group]]


def quarantine_key(published_key: str) -> str:
    """`quarantine/<published key>`, for a key under `videos/`.

    >>> quarantine_key("videos/v1/v1/_manifest.json")
    'quarantine/videos/v1/v1/_manifest.json'
    """
    if not published_key.startswith("videos/"):
        raise ValueError(f"not a published key: {published_key!r}")
    return validate_key(QUARANTINE_ROOT + published_key)


def block_marker_key(video_id: str) -> str:
    """`takedowns/{video_id}.json`: present while the video is taken down.

    >>> block_marker_key("v1")
    'takedowns/v1.json'
    """
    return validate_key(f"{BLOCK_MARKER_ROOT}{video_root(video_id)[len('videos/'):-1]}.json")


def is_blocked(store: MovableStore, video_id: str) -> bool:
    """Whether `video_id` is taken down (its marker exists): nothing may be published for it."""
    return store.get_bytes(block_marker_key(video_id)) is not None


def block_video(store: MovableStore, video_id: str, *, marker: bytes = b"{}") -> Moved:
    """Write the takedown marker, then move every published object of `video_id` to quarantine, pointers first;
    return what was moved.

    video_id: a plain identifier (`fyp.media.keys.video_root` checks it). marker: the marker's content (JSON: the
    notice, for whoever finds it); an existing marker is kept. A video with nothing published (or already
    blocked) moves nothing and is not an error.
    """
    root = video_root(video_id)
    store.create_bytes(block_marker_key(video_id), marker, content_type="application/json")
    keys = [obj.key for obj in store.list_objects(root)]
    moved: list[str] = []
    for _, group in removal_order(keys):
        for key in group:
            store.copy(key, quarantine_key(key))
        # One group deleted before the next is copied: no segment disappears while a playlist still names it.
        store.delete(group)
        moved.extend(group)
    return Moved(video_id=video_id, direction="block", keys=tuple(moved))


def restore_video(store: MovableStore, video_id: str) -> Moved:
    """Delete the takedown marker, then move `video_id`'s quarantined objects back to their published keys,
    pointers last; return what moved."""
    root = QUARANTINE_ROOT + video_root(video_id)
    # The marker goes first: a transcoder that published meanwhile must not move the restored objects away again.
    store.delete([block_marker_key(video_id)])
    published = [obj.key[len(QUARANTINE_ROOT):] for obj in store.list_objects(root)]
    moved: list[str] = []
    for _, group in reversed(removal_order(published)):
        for key in group:
            store.copy(quarantine_key(key), key)
        store.delete([quarantine_key(key) for key in group])
        moved.extend(group)
    return Moved(video_id=video_id, direction="restore", keys=tuple(moved))
