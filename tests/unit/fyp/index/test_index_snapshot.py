"""Snapshot key layout, offset bookkeeping, and save/restore/prune against a local object store."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from fyp.index.scann_index import ScannIndex
from fyp.index.snapshot import (
    OFFSET_BEGINNING,
    LocalObjectStore,
    OffsetTracker,
    SnapshotManifest,
    SnapshotStore,
    latest_key,
    snapshot_prefix,
    start_offsets,
)


@pytest.mark.parametrize(
    ("taken_at", "prefix"),
    [
        (datetime(2026, 11, 24, 9, 30, 5, 123456, tzinfo=UTC), "index-snapshots/videos/20261124T093005.123Z/"),
        (
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "index-snapshots/videos/20260102T010405.000Z/",
        ),
    ],
)
def test_snapshot_prefix_is_utc_and_sorts_as_text(taken_at, prefix):
    assert snapshot_prefix("videos", taken_at) == prefix
    assert latest_key("videos") == "index-snapshots/videos/_latest"


@pytest.mark.parametrize("name", ["", "Videos", "a/b", "../x", "x" * 64])
def test_names_that_could_escape_or_collide_are_refused(name):
    with pytest.raises(ValueError, match="snapshot name"):
        latest_key(name)


def test_offset_tracker_keeps_the_next_offset_and_never_goes_back():
    tracker = OffsetTracker({1: 10})
    for partition, offset in [(0, 5), (0, 3), (1, 9), (1, 10), (2, 0)]:
        tracker.advance(partition, offset)
    assert tracker.next_offsets() == {0: 6, 1: 11, 2: 1}


def test_start_offsets_begin_unknown_partitions_at_the_start():
    assert start_offsets({0: 6, 5: 1}, [2, 0, 1]) == {0: 6, 1: OFFSET_BEGINNING, 2: OFFSET_BEGINNING}
    assert start_offsets({}, [0]) == {0: OFFSET_BEGINNING}


class RecordingStore(LocalObjectStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.puts: list[str] = []

    def put_file(self, key: str, path: Path) -> None:
        self.puts.append(key)
        super().put_file(key, path)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.puts.append(key)
        super().put_bytes(key, data)


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


def save(snapshots: SnapshotStore, tmp_path: Path, ids: list[str], offsets: dict[int, int]) -> SnapshotManifest:
    index = ScannIndex.build(ids, np.random.default_rng(len(ids)).standard_normal((len(ids), 8)).astype(np.float32))
    directory = tmp_path / f"save-{len(ids)}"
    directory.mkdir()
    index.save(directory)
    return snapshots.save_directory(
        directory, topic="fyp.video-embeddings.v1", offsets=offsets, kind=index.kind, dim=index.dim, size=len(index)
    )


def test_save_then_restore_with_pointer_written_last(tmp_path):
    store = RecordingStore(tmp_path / "s3")
    snapshots = SnapshotStore(store, "videos", clock=Clock())
    assert snapshots.latest() is None
    manifest = save(snapshots, tmp_path, ["a", "b", "c"], {0: 3, 2: 7})
    assert store.puts[-1] == "index-snapshots/videos/_latest"
    assert store.puts[-2] == manifest.prefix + "manifest.json"
    assert all(key.startswith(manifest.prefix) for key in store.puts[:-1])
    assert {f.name for f in manifest.files} >= {"ids.json", "index.json", "scann_assets.pbtxt"}

    latest = snapshots.latest()
    assert latest == manifest
    assert latest.offsets == {0: 3, 2: 7} and latest.size == 3
    with snapshots.fetched(latest) as directory:
        assert len(ScannIndex.load(directory)) == 3


def test_a_corrupt_file_is_caught_on_restore(tmp_path):
    store = LocalObjectStore(tmp_path / "s3")
    snapshots = SnapshotStore(store, "videos", clock=Clock())
    manifest = save(snapshots, tmp_path, ["a", "b"], {0: 1})
    store.put_bytes(manifest.prefix + "ids.json", b'["a", "x"]')
    with pytest.raises(ValueError, match=r"ids\.json does not match"), snapshots.fetched(manifest):
        pass


def test_a_pointer_outside_the_index_is_refused(tmp_path):
    store = LocalObjectStore(tmp_path / "s3")
    store.put_bytes(
        latest_key("videos"), json.dumps({"prefix": "index-snapshots/other/20260101T000000.000Z/"}).encode()
    )
    with pytest.raises(ValueError, match="not a snapshot of videos"):
        SnapshotStore(store, "videos").latest()


def test_manifest_json_round_trip_and_bad_file_names():
    manifest = SnapshotManifest(
        name="videos",
        prefix="index-snapshots/videos/20260101T000000.000Z/",
        taken_at_ms=1,
        topic="t",
        offsets={0: 5, 1: 0},
        kind="scann",
        dim=8,
        size=2,
        files=(),
    )
    assert SnapshotManifest.from_json(manifest.to_json()) == manifest
    assert "model" not in json.loads(manifest.to_json())  # as snapshots read before they named their model
    named = dataclasses.replace(manifest, model="two-tower-20261124T161500Z-1a2b3c4d")
    assert SnapshotManifest.from_json(named.to_json()).model == "two-tower-20261124T161500Z-1a2b3c4d"
    raw = json.loads(manifest.to_json())
    raw["files"] = [{"name": "../escape", "size": 1, "sha256": "0"}]
    with pytest.raises(ValueError, match="bad file name"):
        SnapshotManifest.from_json(json.dumps(raw))


def test_prune_keeps_the_newest_and_the_pointed_one(tmp_path):
    store = LocalObjectStore(tmp_path / "s3")
    snapshots = SnapshotStore(store, "videos", clock=Clock())
    made = [save(snapshots, tmp_path, [f"v{j}" for j in range(i + 1)], {0: i}) for i in range(4)]
    assert snapshots.snapshots() == [m.prefix for m in made]
    deleted = snapshots.prune(keep=2)
    assert deleted == [made[0].prefix, made[1].prefix]
    assert snapshots.snapshots() == [made[2].prefix, made[3].prefix]
    assert snapshots.latest() == made[3]
    with pytest.raises(ValueError, match="keep"):
        snapshots.prune(keep=0)
