"""PDQ near-duplicates on videos generated with ffmpeg's lavfi sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from fyp.moderation.frames import sample_frames
from fyp.moderation.phash import (
    CROP_LEVELS,
    TRANSFORMS,
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
    names = ("original", "reencoded", "other", "other2", "flat", "mirrored", "cropped", "rotated", "mirrored_cropped")
    paths = {name: d / f"{name}.mp4" for name in names}
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10:duration=4", *ENCODE, str(paths["original"]))
    # The same video as a re-upload would arrive: lower resolution, lower bitrate (frame distances 6..22).
    small = ("-vf", "scale=240:136", "-b:v", "100k")
    _ffmpeg("-i", str(paths["original"]), *small, *ENCODE, str(paths["reencoded"]))
    _ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=10", "-t", "4", *ENCODE, str(paths["other"]))
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x180:rate=10:duration=4", *ENCODE, str(paths["other2"]))
    flat = "color=c=0x406080:size=320x180:rate=10:duration=4"
    _ffmpeg("-f", "lavfi", "-i", flat, *ENCODE, str(paths["flat"]))
    # The edits people make to re-upload a video: a mirror image, a centred 5 % crop scaled back, a turn.
    crop = "crop=304:170,scale=320:180"  # 95 % of each side (rounded to even sizes)
    edits = {"mirrored": "hflip", "cropped": crop, "rotated": "transpose=clock", "mirrored_cropped": f"hflip,{crop}"}
    for name, edit in edits.items():
        _ffmpeg("-i", str(paths["original"]), "-vf", edit, *ENCODE, str(paths[name]))
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
    assert np.array_equal(back.crops, sig.crops) and back.crop_levels == CROP_LEVELS
    assert back.turned.shape[1] == 0  # the dihedral hashes are for querying only: never stored
    assert len(sig.to_bytes()) == 4 + 1 + len(CROP_LEVELS) + len(sig) * (1 + 32 * (1 + len(CROP_LEVELS)))
    with pytest.raises(ValueError, match="not a format-2"):
        VideoSignature.from_bytes(b"x" * 33)  # a format-1 record (quality byte + hash)
    frame_bytes = 1 + 32 * (1 + len(CROP_LEVELS))
    with pytest.raises(ValueError, match=f"{frame_bytes}-byte frames"):
        VideoSignature.from_bytes(sig.to_bytes()[:-1])
    header = sig.to_bytes()[: 4 + 1 + len(CROP_LEVELS)]
    with pytest.raises(ValueError, match="at most 256 frames"):
        VideoSignature.from_bytes(header + bytes(frame_bytes) * 257)


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
    assert len(redis.lists["fyp:moderation:pdq:v2"]) == 2  # each record was written once
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
        ({"transforms": ("mirror",)}, "identity"),
        ({"transforms": ("identity", "skew")}, "transforms"),
        ({"max_distance": 300}, "max_distance"),
        ({"min_quality": 101}, "min_quality"),
        ({"min_query_match": 1.5}, "min_query_match"),
    ],
)
def test_policy_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DuplicatePolicy(**kwargs)


@pytest.mark.parametrize(
    ("edited", "transform"),
    [("mirrored", "mirror"), ("cropped", "identity"), ("rotated", "rotate_90_ccw"), ("mirrored_cropped", "mirror")],
)
def test_edited_copies_are_near_duplicates(
    signatures: dict[str, VideoSignature], edited: str, transform: str
) -> None:
    # Before the dihedral query and the stored crop hashes, none of these matched (see docs/MODERATION.md).
    match = match_signatures(signatures[edited], signatures["original"])
    assert match is not None, edited
    assert match.query_match >= 0.8 and match.transform == transform


def test_the_crop_hashes_are_what_catches_a_crop(signatures: dict[str, VideoSignature]) -> None:
    original = signatures["original"]
    whole_frames_only = VideoSignature(hashes=original.hashes, qualities=original.qualities)
    assert match_signatures(signatures["cropped"], whole_frames_only) is None
    assert match_signatures(signatures["cropped"], original) is not None


def test_mirrors_are_not_matched_with_identity_only(signatures: dict[str, VideoSignature]) -> None:
    policy = DuplicatePolicy(transforms=("identity",))
    assert match_signatures(signatures["mirrored"], signatures["original"], policy) is None
    assert match_signatures(signatures["reencoded"], signatures["original"], policy) is not None


@pytest.mark.parametrize("edited", ["mirrored", "cropped", "rotated"])
def test_edited_copies_of_one_video_do_not_match_another(
    signatures: dict[str, VideoSignature], edited: str
) -> None:
    for other in ("other", "other2"):
        assert match_signatures(signatures[edited], signatures[other]) is None
        assert match_signatures(signatures[other], signatures[edited]) is None


def test_dihedral_hashes_are_in_transforms_order(videos: dict[str, Path]) -> None:
    frame = sample_frames(videos["original"])[1]
    turned = video_signature([frame]).turned[0]
    ways = {"identity": frame, "rotate_90_ccw": np.rot90(frame, 1), "rotate_180": np.rot90(frame, 2),
            "rotate_90_cw": np.rot90(frame, 3), "flip_vertical": frame[::-1], "mirror": frame[:, ::-1],
            "transpose": frame.transpose(1, 0, 2), "transverse": np.rot90(frame, 2).transpose(1, 0, 2)}
    for i, name in enumerate(TRANSFORMS):
        distances = [int(np.unpackbits(hash_frame(ways[name])[0] ^ t).sum()) for t in turned]
        assert distances[i] == 0 and min(distances[:i] + distances[i + 1 :]) > 64, (name, distances)
    # The names follow PDQ's own dihedral order (pdqhash.compute_dihedral's, which is close but not exact).
    import pdqhash

    dihedral = np.packbits(np.asarray(pdqhash.compute_dihedral(frame)[0], dtype=np.uint8), axis=1)
    assert [int(np.argmin(np.unpackbits(turned ^ h, axis=1).sum(axis=1))) for h in dihedral] == list(range(8))


def test_an_index_saved_before_crop_hashes_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "old.npz", ids=np.array(["a"]), hashes=np.zeros((1, 32), np.uint8),
             owner=np.zeros(1, np.int64), frames_of=np.ones(1, np.int64))
    with pytest.raises(ValueError, match="rebuild"):
        PdqIndex.load(tmp_path / "old.npz")


def test_redis_index_reads_the_format_1_list_once_and_never_writes_it(
    signatures: dict[str, VideoSignature],
) -> None:
    redis = FakeRedis()
    original = signatures["original"]
    v1 = np.concatenate([original.qualities[:, None].astype(np.uint8), original.hashes], axis=1).tobytes()
    redis.rpush("old", b"rejected-before\n" + v1)
    index = RedisPdqIndex(redis, key="new", legacy_key="old")
    found = index.query(signatures["mirrored"])  # turning is on the query side: old records still catch mirrors
    assert found is not None and (found.video_id, found.transform) == ("rejected-before", "mirror")
    index.add("v", signatures["other"])
    assert len(redis.lists["old"]) == 1 and len(redis.lists["new"]) == 1
    assert index.sync() == 0  # the legacy list is not read again
    with pytest.raises(ValueError, match="format-1"):
        VideoSignature.from_v1_bytes(v1[:-1])


@pytest.mark.parametrize("max_distance", [0, 31, 64, 200, 256])
def test_the_two_word_prefilter_finds_exactly_what_all_four_words_find(max_distance: int) -> None:
    from fyp.moderation.phash import _near

    rng = np.random.default_rng(3)
    stored = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    query = stored[17].copy()
    stored[100:140] = query
    for i in range(100, 140):  # planted neighbours, 0..39 bits away, some bits in each word
        flip = rng.choice(256, size=i - 100, replace=False)
        stored[i] = np.packbits(np.unpackbits(stored[i]) ^ np.isin(np.arange(256), flip))
    expected = np.unpackbits(stored ^ query, axis=1).sum(axis=1)
    words = np.ascontiguousarray(stored).view(np.uint64).T.copy()
    scratch = (np.empty(len(stored), np.uint64), np.empty(len(stored), np.uint8))
    rows, dist = _near(query.view(np.uint64), words, max_distance, scratch)
    (want,) = np.nonzero(expected <= max_distance)
    assert rows.tolist() == want.tolist() and dist.tolist() == expected[want].tolist()
