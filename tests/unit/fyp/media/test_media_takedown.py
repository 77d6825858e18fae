"""Blocking and restoring a video's published media, on an in-memory object store (no S3): the order of the
moves, idempotence, and a crash mid-move. They test the protocol's logic, not a real S3 server
(tests/integration/test_takedown.py does that)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from fyp.media.keys import InvalidKey
from fyp.media.publish import StoredObject
from fyp.media.takedown import (
    block_marker_key,
    block_video,
    is_blocked,
    key_group,
    quarantine_key,
    removal_order,
    restore_video,
)

T0 = datetime(2026, 12, 6, tzinfo=UTC)
RUN = "videos/v1/v1/0123456789abcdef/"
PUBLISHED = [
    "videos/v1/v1/_manifest.json", "videos/v1/v1/_manifest.full.json",
    RUN + "stream/master.m3u8", RUN + "stream/manifest.mpd", RUN + "stream/media_0.m3u8",
    RUN + "stream/init_0.m4s", RUN + "stream/seg_0_00001.m4s", RUN + "audio.m4a",
    RUN + "cover.jpg", RUN + "posters/poster_01.jpg", RUN + "ffmpeg.log",
]


class MovingStore:
    """A MovableStore in a dict that logs every operation; `fail_after` copies, it raises (a crash)."""

    def __init__(self, keys: Sequence[str], *, fail_after: int | None = None) -> None:
        self.objects = {key: key.encode() for key in keys}
        self.log: list[tuple[str, str]] = []
        self.fail_after = fail_after

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield StoredObject(key=key, size=len(self.objects[key]), last_modified=T0)

    def get_bytes(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def create_bytes(self, key: str, data: bytes, *, content_type: str) -> bool:
        if key in self.objects:
            return False
        self.objects[key] = data
        self.log.append(("create", key))
        return True

    def copy(self, source: str, destination: str) -> None:
        if self.fail_after is not None and sum(op == "copy" for op, _ in self.log) >= self.fail_after:
            raise ConnectionError("S3 went away")
        self.objects[destination] = self.objects[source]
        self.log.append(("copy", source))

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)
            self.log.append(("delete", key))


def published(store: MovingStore) -> list[str]:
    return sorted(k for k in store.objects if k.startswith("videos/"))


@pytest.mark.parametrize(("key", "group"), [
    ("videos/v1/v1/_manifest.json", "pointers"), ("videos/v1/v1/_manifest.full.json", "pointers"),
    (RUN + "stream/master.m3u8", "playlists"), (RUN + "stream/manifest.mpd", "playlists"),
    (RUN + "stream/seg_0_00001.m4s", "segments"), (RUN + "audio.m4a", "segments"),
    (RUN + "cover.jpg", "other"), (RUN + "ffmpeg.log", "other"),
])
def test_key_groups(key: str, group: str) -> None:
    assert key_group(key) == group


def test_removal_order_is_pointers_playlists_segments_other() -> None:
    assert [g for g, _ in removal_order(reversed(PUBLISHED))] == ["pointers", "playlists", "segments", "other"]
    assert sum(len(keys) for _, keys in removal_order(PUBLISHED)) == len(PUBLISHED)


def test_block_moves_everything_and_deletes_each_group_before_the_next_is_copied() -> None:
    store = MovingStore([*PUBLISHED, "videos/v10/v1/_manifest.json"])  # v10 shares a prefix string, not a root
    moved = block_video(store, "v1")
    assert sorted(moved.keys) == sorted(PUBLISHED) and moved.count == len(PUBLISHED)
    assert published(store) == ["videos/v10/v1/_manifest.json"]
    assert all(store.objects[quarantine_key(k)] == k.encode() for k in PUBLISHED)
    deleted = [key for op, key in store.log if op == "delete"]
    ranks = [["pointers", "playlists", "segments", "other"].index(key_group(k)) for k in deleted]
    assert ranks == sorted(ranks)
    # No segment is deleted while a playlist naming it is still published.
    first_segment = deleted.index(next(k for k in deleted if key_group(k) == "segments"))
    assert all(key_group(k) != "playlists" for k in deleted[first_segment:])


def test_block_is_idempotent() -> None:
    store = MovingStore(PUBLISHED)
    block_video(store, "v1")
    before = dict(store.objects)
    again = block_video(store, "v1")
    assert again.count == 0 and store.objects == before


def test_a_crash_mid_block_loses_nothing_and_a_retry_finishes() -> None:
    store = MovingStore(PUBLISHED, fail_after=4)
    with pytest.raises(ConnectionError):
        block_video(store, "v1")
    every = {k[len("quarantine/"):] if k.startswith("quarantine/") else k for k in store.objects
             if not k.startswith("takedowns/")}
    assert every == set(PUBLISHED)  # each object is published, quarantined, or both: none lost
    store.fail_after = None
    block_video(store, "v1")
    assert published(store) == [] and len([k for k in store.objects if k.startswith("quarantine/")]) == len(PUBLISHED)


def test_restore_puts_back_the_same_keys_pointers_last() -> None:
    store = MovingStore(PUBLISHED)
    block_video(store, "v1")
    store.log.clear()
    restored = restore_video(store, "v1")
    assert published(store) == sorted(PUBLISHED) and len(store.objects) == len(PUBLISHED)  # the marker is gone
    copied = [key for op, key in store.log if op == "copy"]
    assert [key_group(k) for k in copied[-2:]] == ["pointers", "pointers"]
    assert restored.count == len(PUBLISHED)
    assert restore_video(store, "v1").count == 0  # idempotent too


@pytest.mark.parametrize("video_id", ["../v1", "v1/x", "", "v" * 129])
def test_unsafe_video_ids_are_refused(video_id: str) -> None:
    with pytest.raises(InvalidKey):
        block_video(MovingStore(PUBLISHED), video_id)


def test_only_published_keys_have_a_quarantine_key() -> None:
    with pytest.raises(ValueError, match="not a published key"):
        quarantine_key("uploads/2026/12/06/" + "0" * 32)


def test_the_marker_is_written_before_anything_moves_and_deleted_before_anything_comes_back() -> None:
    store = MovingStore(PUBLISHED)
    assert not is_blocked(store, "v1")
    block_video(store, "v1", marker=b'{"notice_id": "N-1"}')
    assert store.log[0] == ("create", block_marker_key("v1")) and is_blocked(store, "v1")
    assert store.objects[block_marker_key("v1")] == b'{"notice_id": "N-1"}'
    block_video(store, "v1", marker=b"{}")  # a retry keeps the first marker
    assert store.objects[block_marker_key("v1")] == b'{"notice_id": "N-1"}'
    store.log.clear()
    restore_video(store, "v1")
    assert store.log[0] == ("delete", block_marker_key("v1")) and not is_blocked(store, "v1")


def test_a_marker_is_per_video() -> None:
    store = MovingStore(PUBLISHED)
    block_video(store, "v1")
    assert not is_blocked(store, "v10") and block_marker_key("v10") == "takedowns/v10.json"
