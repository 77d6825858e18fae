"""PDQ near-duplicates on videos generated with ffmpeg's lavfi sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from fyp.moderation.frames import sample_frames
from fyp.moderation.phash import (
    DuplicatePolicy,
    PdqIndex,
    RedisPdqIndex,
    VideoSignature,
    hash_frame,
    match_signatures,
    video_signature,
)

ENCODE = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("phash")
    paths = {name: d / f"{name}.mp4" for name in ("original", "reencoded", "other", "other2", "flat")}
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10:duration=4", *ENCODE, str(paths["original"]))
    # The same video as a re-upload would arrive: lower resolution, lower bitrate (frame distances 6..22).
    small = ("-vf", "scale=240:136", "-b:v", "100k")
    _ffmpeg("-i", str(paths["original"]), *small, *ENCODE, str(paths["reencoded"]))
    _ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=10", "-t", "4", *ENCODE, str(paths["other"]))
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x180:rate=10:duration=4", *ENCODE, str(paths["other2"]))
    flat = "color=c=0x406080:size=320x180:rate=10:duration=4"
    _ffmpeg("-f", "lavfi", "-i", flat, *ENCODE, str(paths["flat"]))
    return paths


@pytest.fixture(scope="module")
def signatures(videos: dict[str, Path]) -> dict[str, VideoSignature]:
    return {name: video_signature(sample_frames(path)) for name, path in videos.items()}


def test_reencoded_copy_is_a_near_duplicate(signatures: dict[str, VideoSignature]) -> None:
    match = match_signatures(signatures["reencoded"], signatures["original"])
    assert match is not None
    assert match.query_match == 1.0
    assert match.min_distance <= 31


@pytest.mark.parametrize("other", ["other", "other2"])
def test_different_video_is_not(signatures: dict[str, VideoSignature], other: str) -> None:
    assert match_signatures(signatures[other], signatures["original"]) is None
    assert match_signatures(signatures["original"], signatures[other]) is None


def test_flat_frames_have_low_quality_and_never_match(signatures: dict[str, VideoSignature]) -> None:
    flat = signatures["flat"]
    assert len(flat) == 4
    assert (flat.qualities < 50).all()
    assert len(flat.usable(50)) == 0
    # Identical flat videos would be "duplicates" by distance alone; quality keeps them apart.
    assert match_signatures(flat, flat) is None


def test_distance_threshold_is_inclusive() -> None:
    base = np.zeros(32, dtype=np.uint8)
    near = base.copy()
    near[:3] = 0xFF  # 24 bits
    near[3] = 0x7F  # +7 = 31 bits
    far = near.copy()
    far[3] = 0xFF  # 32 bits

    def sig(h: np.ndarray) -> VideoSignature:
        return VideoSignature(hashes=h[None, :], qualities=np.array([100]))

    assert match_signatures(sig(near), sig(base)) is not None
    assert match_signatures(sig(far), sig(base)) is None


def test_query_match_fraction_must_reach_the_policy(signatures: dict[str, VideoSignature]) -> None:
    orig, other = signatures["original"], signatures["other"]
    # Half the frames from the original, half from another video: 50 % of the query matches.
    mixed = VideoSignature(
        hashes=np.concatenate([orig.hashes[:2], other.hashes[:2]]),
        qualities=np.concatenate([orig.qualities[:2], other.qualities[:2]]),
    )
    assert match_signatures(mixed, orig) is None  # default 0.8
    found = match_signatures(mixed, orig, DuplicatePolicy(min_query_match=0.5))
    assert found is not None and found.query_match == 0.5


def test_index_finds_the_best_earlier_video_and_honours_exclude(
    signatures: dict[str, VideoSignature],
) -> None:
    index = PdqIndex()
    for name in ("other", "original", "flat", "other2"):
        index.add(name, signatures[name])
    assert len(index) == 4
    found = index.query(signatures["reencoded"])
    assert found is not None and found.video_id == "original"
    assert index.query(signatures["reencoded"], exclude="original") is None
    assert index.query(signatures["flat"]) is None


def test_index_replaces_a_video_added_again(signatures: dict[str, VideoSignature]) -> None:
    index = PdqIndex()
    index.add("v", signatures["original"])
    index.add("v", signatures["other"])
    assert len(index) == 1
    assert index.query(signatures["reencoded"]) is None
    assert index.query(signatures["other"]).video_id == "v"


def test_index_save_and_load(tmp_path: Path, signatures: dict[str, VideoSignature]) -> None:
    index = PdqIndex()
    index.add("a", signatures["original"])
    index.add("b", signatures["other"])
    index.add("a", signatures["other2"])  # a replaced entry must not come back
    index.save(tmp_path / "pdq.npz")
    loaded = PdqIndex.load(tmp_path / "pdq.npz")
    assert len(loaded) == 2
    assert loaded.query(signatures["reencoded"]) is None
    assert loaded.query(signatures["other2"]).video_id == "a"
    assert loaded.query(signatures["other"]).video_id == "b"


def test_signature_bytes_round_trip(signatures: dict[str, VideoSignature]) -> None:
    sig = signatures["original"]
    back = VideoSignature.from_bytes(sig.to_bytes())
    assert np.array_equal(back.hashes, sig.hashes)
    assert np.array_equal(back.qualities, sig.qualities)
    with pytest.raises(ValueError, match="multiple of 33"):
        VideoSignature.from_bytes(b"x" * 34)


class FakeRedis:
    """The two list commands RedisPdqIndex uses, with Redis's inclusive LRANGE semantics."""

    def __init__(self) -> None:
        self.lists: dict[str, list[bytes]] = {}

    def rpush(self, name: str, *values: bytes) -> int:
        self.lists.setdefault(name, []).extend(values)
        return len(self.lists[name])

    def lrange(self, name: str, start: int, end: int) -> list[bytes]:
        items = self.lists.get(name, [])
        stop = len(items) if end == -1 else end + 1  # LRANGE includes `end`
        return items[start:stop]


def test_redis_index_is_shared_between_workers(signatures: dict[str, VideoSignature]) -> None:
    redis = FakeRedis()
    worker_a = RedisPdqIndex(redis)
    worker_b = RedisPdqIndex(redis)
    worker_a.add("original", signatures["original"])
    found = worker_b.query(signatures["reencoded"])
    assert found is not None and found.video_id == "original"
    worker_b.add("other", signatures["other"])
    assert worker_a.query(signatures["other"]).video_id == "other"
    assert len(redis.lists["fyp:moderation:pdq"]) == 2  # each record was written once
    # A fresh worker rebuilds the whole index from the list.
    assert len(RedisPdqIndex(redis)) == 2
    with pytest.raises(ValueError, match="newline"):
        worker_a.add("bad\nid", signatures["other"])


def test_redis_sync_reads_in_pages(
    signatures: dict[str, VideoSignature], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fyp.moderation.phash as phash

    redis = FakeRedis()
    writer = RedisPdqIndex(redis)
    for name in ("original", "other", "other2"):
        writer.add(name, signatures[name])
    monkeypatch.setattr(phash, "_SYNC_PAGE", 2)
    reader = RedisPdqIndex(redis)
    assert reader.sync() == 3
    assert reader.sync() == 0
    assert reader.query(signatures["other2"]).video_id == "other2"


def test_hash_frame_is_stable_under_mild_noise(videos: dict[str, Path]) -> None:
    frame = sample_frames(videos["original"])[0]
    noise = np.random.default_rng(7).integers(-8, 9, frame.shape)
    noisy = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    (h1, q1), (h2, _) = hash_frame(frame), hash_frame(noisy)
    assert q1 >= 50
    assert int(np.unpackbits(h1 ^ h2).sum()) <= 31
    assert int(np.unpackbits(h1 ^ hash_frame(frame[:, ::-1])[0]).sum()) > 31  # a mirror image is not


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_distance": 300}, "max_distance"),
        ({"min_quality": 101}, "min_quality"),
        ({"min_query_match": 1.5}, "min_query_match"),
    ],
)
def test_policy_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DuplicatePolicy(**kwargs)
