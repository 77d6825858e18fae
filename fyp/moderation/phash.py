"""Near-duplicate videos by PDQ: 256-bit perceptual hashes of sampled frames, matched by Hamming distance.

A video's signature is its frames' PDQ hashes (the vPDQ idea from Meta's ThreatExchange, on our own sampled
frames). Two videos match when enough of the new video's usable frames (quality >= 50) lie within Hamming
distance 31 of some frame of the earlier one: Meta's published PDQ defaults, and vPDQ's 80 % query-match.

Two edits defeat a plain PDQ hash, and each is met on the side where it costs least:
- Mirrors and rotations: PDQ defines the hashes of a frame's 8 dihedral transforms (`TRANSFORMS`; see `_TURNS`
  for why they are hashed from turned pixels rather than `pdqhash.compute_dihedral`). The new video is queried
  with all 8; the index stores only the untransformed hash. Storing them instead would make the index 8x larger
  for the same result.
- Crops (a copy cut by a few % and scaled back): a 5 % crop moved generated clips' frames 20..66 bits. The
  index also stores the hash of each frame's centred crops at `CROP_LEVELS` (the central 98, 96, ... 90 % of each
  side), so that a copy cropped by up to ~10 % lies within ~1 % of scale of one of them. This must be on the stored
  side: the copy has lost the border, so it cannot be un-cropped at query time.
A query frame matches under one transform at a time; the video's query-match share is that of its best transform,
so frames matching under unrelated transforms do not add up to a false match.

The index is brute force: every query hash is XORed against every stored hash, popcounting 64-bit words with
numpy: (8 transforms x frames) query hashes against (6 x frames) stored ones per video, ~0.5 s of CPU for a
4-frame query at 100k indexed videos (docs/MODERATION.md, "Edited copies"). Past some tens of thousands of videos,
use multi-index hashing (PDQ's own `mih`) or a FAISS binary index, or narrow `DuplicatePolicy.transforms`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = [
    "CROP_LEVELS",
    "HASH_BYTES",
    "TRANSFORMS",
    "DuplicateMatch",
    "DuplicatePolicy",
    "PdqIndex",
    "RedisPdqIndex",
    "VideoSignature",
    "frame_hashes",
    "hash_frame",
    "match_signatures",
    "video_signature",
]

HASH_BYTES = 32  # 256 bits
# Share of each side cut off (half from each edge) for the extra stored hashes. 2 % apart: a crop of up to ~10 %
# is then within 1 % of scale of one level, which PDQ mostly keeps within 31 bits; at 3 % and 4 % apart, crops
# between two levels were missed far more often (docs/MODERATION.md, "Edited copies", measured).
CROP_LEVELS = (0.02, 0.04, 0.06, 0.08, 0.10)
# PDQ's dihedral order (pdqhash.compute_dihedral's): how a frame is turned before hashing, see _TURNS.
TRANSFORMS = ("identity", "rotate_90_ccw", "rotate_180", "rotate_90_cw", "flip_vertical", "mirror", "transpose",
              "transverse")
MAX_FRAMES = 256  # a stored signature of more frames is refused (the sampler takes 8 by default)
_MAGIC = b"PDQ2"  # signature format 2: magic, crop count, crop levels in 0.1 %, then the frames
_WORDS = HASH_BYTES // 8  # a hash is four 64-bit words
_SYNC_PAGE = 2_000  # Redis list records per LRANGE (~3.2 MB for 8-frame signatures of ~1.6 kB)


@dataclass(frozen=True, kw_only=True)
class DuplicatePolicy:
    """When two signatures count as the same video.

    max_distance: frames match when their hashes differ in at most this many of 256 bits (PDQ default 31).
    min_quality: frames of lower PDQ quality (0..100; flat or featureless) never match (PDQ default 50).
    min_query_match: fraction of the new video's usable frames that must match (vPDQ default 0.8), all under
        the same transform.
    min_target_match: fraction of the earlier video's usable frames that must match (vPDQ default 0.0, so a
        short clip cut from a longer video still matches it).
    transforms: which of TRANSFORMS the new video is also queried with (default all 8; ("identity",) turns off
        mirror and rotation matching and its 8x query cost).
    """

    max_distance: int = 31
    min_quality: int = 50
    min_query_match: float = 0.8
    min_target_match: float = 0.0
    transforms: tuple[str, ...] = TRANSFORMS

    def __post_init__(self) -> None:
        if not 0 <= self.max_distance <= 256:
            raise ValueError(f"max_distance must be in 0..256, got {self.max_distance}")
        if not 0 <= self.min_quality <= 100:
            raise ValueError(f"min_quality must be in 0..100, got {self.min_quality}")
        for name in ("min_query_match", "min_target_match"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in 0..1, got {value}")
        unknown = sorted(set(self.transforms) - set(TRANSFORMS))
        if unknown or not self.transforms or "identity" not in self.transforms:
            raise ValueError(f"transforms must include 'identity' and be among {TRANSFORMS}, got {self.transforms}")


def _empty(n: int) -> np.ndarray:
    return np.empty((n, 0, HASH_BYTES), dtype=np.uint8)


@dataclass(frozen=True, kw_only=True, eq=False)
class VideoSignature:
    """A video's frame hashes.

    hashes: (n, 32) uint8, each frame's PDQ hash, packed bits; qualities: (n,) PDQ quality 0..100.
    crops: (n, len(crop_levels), 32), the hashes of each frame's centred crops (stored, matched against).
    turned: (n, 8, 32), the hashes of each frame's dihedral transforms in TRANSFORMS order, or (n, 0, 32). Used
        only to query; never stored (to_bytes leaves them out), so a signature read back queries untransformed.
    """

    hashes: np.ndarray
    qualities: np.ndarray
    crops: np.ndarray | None = None
    crop_levels: tuple[float, ...] = ()
    turned: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.hashes.shape[0] if self.hashes.ndim else 0
        if self.hashes.ndim != 2 or self.hashes.shape[1] != HASH_BYTES or self.hashes.dtype != np.uint8:
            shape, dtype = self.hashes.shape, self.hashes.dtype
            raise ValueError(f"hashes must be (n, {HASH_BYTES}) uint8, got {shape} {dtype}")
        if self.qualities.shape != (n,):
            raise ValueError(f"qualities must be ({n},), got {self.qualities.shape}")
        object.__setattr__(self, "crops", _empty(n) if self.crops is None else self.crops)
        object.__setattr__(self, "turned", _empty(n) if self.turned is None else self.turned)
        if self.crops.shape != (n, len(self.crop_levels), HASH_BYTES) or self.crops.dtype != np.uint8:
            raise ValueError(f"crops must be ({n}, {len(self.crop_levels)}, {HASH_BYTES}) uint8, "
                             f"got {self.crops.shape} {self.crops.dtype}")
        if self.turned.shape not in ((n, 0, HASH_BYTES), (n, len(TRANSFORMS), HASH_BYTES)):
            raise ValueError(f"turned must be ({n}, 0 or {len(TRANSFORMS)}, {HASH_BYTES}), got {self.turned.shape}")
        if not all(0 < level < 0.5 for level in self.crop_levels):
            raise ValueError(f"crop levels must be in (0, 0.5), got {self.crop_levels}")

    def __len__(self) -> int:
        return int(self.hashes.shape[0])

    def _kept(self, min_quality: int) -> np.ndarray:
        """Indices of the frames of quality >= min_quality, each distinct hash once (a still shot counts once)."""
        first: dict[bytes, int] = {}
        for i in np.flatnonzero(self.qualities >= min_quality).tolist():
            first.setdefault(self.hashes[i].tobytes(), i)
        return np.fromiter(first.values(), dtype=np.intp, count=len(first))

    def usable(self, min_quality: int) -> np.ndarray:
        """The hashes of frames with quality >= min_quality, duplicates removed."""
        return self.hashes[self._kept(min_quality)]

    def stored_hashes(self, min_quality: int) -> np.ndarray:
        """(usable frames, 1 + crops, 32): what an index keeps of each usable frame, whole frame first."""
        kept = self._kept(min_quality)
        return np.concatenate([self.hashes[kept][:, None, :], self.crops[kept]], axis=1)

    def query_hashes(self, min_quality: int, transforms: Sequence[str] = TRANSFORMS) -> np.ndarray:
        """(usable frames, transforms, 32): each usable frame turned every way asked (identity only, without
        `turned`), in the order of `transforms`."""
        kept = self._kept(min_quality)
        if not self.turned.shape[1]:
            return self.hashes[kept][:, None, :]
        return self.turned[kept][:, [TRANSFORMS.index(t) for t in transforms], :]

    def to_bytes(self) -> bytes:
        """Format 2: b"PDQ2", the crop count, each crop level in 0.1 % (one byte each), then per frame the
        quality byte, the frame's hash and its crops' hashes."""
        m = len(self.crop_levels)
        header = _MAGIC + bytes([m, *(round(level * 1000) for level in self.crop_levels)])
        records = np.empty((len(self), 1 + (1 + m) * HASH_BYTES), dtype=np.uint8)
        records[:, 0] = self.qualities
        records[:, 1 : 1 + HASH_BYTES] = self.hashes
        records[:, 1 + HASH_BYTES :] = self.crops.reshape(len(self), m * HASH_BYTES)
        return header + records.tobytes()

    @classmethod
    def from_v1_bytes(cls, data: bytes) -> VideoSignature:
        """Format 1 (the unversioned `fyp:moderation:pdq:*` lists): 33 bytes a frame, quality then hash."""
        if len(data) % (1 + HASH_BYTES) or len(data) // (1 + HASH_BYTES) > MAX_FRAMES:
            raise ValueError(f"a format-1 signature is at most {MAX_FRAMES} 33-byte frames, got {len(data)} bytes")
        records = np.frombuffer(data, dtype=np.uint8).reshape(-1, 1 + HASH_BYTES)
        return cls(hashes=records[:, 1:].copy(), qualities=records[:, 0].astype(np.int16))

    @classmethod
    def from_bytes(cls, data: bytes) -> VideoSignature:
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 1:
            raise ValueError(f"not a format-2 PDQ signature (starts {data[:5]!r})")
        m = data[len(_MAGIC)]
        body = len(_MAGIC) + 1 + m
        levels = tuple(b / 1000 for b in data[len(_MAGIC) + 1 : body])
        size = 1 + (1 + m) * HASH_BYTES
        if len(levels) != m or (len(data) - body) % size:
            raise ValueError(f"a format-2 signature with {m} crops is a header and {size}-byte frames, "
                             f"got {len(data)} bytes")
        if (len(data) - body) // size > MAX_FRAMES:
            raise ValueError(f"a signature holds at most {MAX_FRAMES} frames, got {(len(data) - body) // size}")
        records = np.frombuffer(data, dtype=np.uint8, offset=body).reshape(-1, size)
        hashes = records[:, 1:].reshape(-1, 1 + m, HASH_BYTES)
        return cls(hashes=hashes[:, 0].copy(), qualities=records[:, 0].astype(np.int16),
                   crops=hashes[:, 1:].copy(), crop_levels=levels)


@dataclass(frozen=True, kw_only=True)
class DuplicateMatch:
    """An earlier video that the new one matches; fractions are of each side's usable frames.

    transform: how the new video's frames were turned to match (one of TRANSFORMS; "mirror" for a mirrored copy).
    """

    video_id: str
    query_match: float
    target_match: float
    min_distance: int
    transform: str = "identity"


def _packed(bits: Any) -> np.ndarray:
    return np.packbits(np.asarray(bits, dtype=np.uint8).reshape(-1, 256), axis=1)


def hash_frame(frame: np.ndarray) -> tuple[np.ndarray, int]:
    """PDQ of one HxWx3 uint8 RGB frame: (32-byte packed hash, quality 0..100)."""
    import pdqhash  # compiled extension; imported here so that reading signatures never needs it

    bits, quality = pdqhash.compute(np.ascontiguousarray(frame, dtype=np.uint8))
    return _packed(bits)[0], int(quality)


def centred_crop(frame: np.ndarray, level: float) -> np.ndarray:
    """The centre of `frame` with `level` of each side cut off, half from each edge (no rescale: PDQ resizes)."""
    height, width = frame.shape[:2]
    dy, dx = round(height * level / 2), round(width * level / 2)
    return frame[dy : height - dy, dx : width - dx]


# Each of TRANSFORMS as a turn of the pixels. Not pdqhash.compute_dihedral: it derives the 7 turned hashes from
# one DCT, but its downsampling is not symmetric, so some came out 6..28 bits from the hash of the turned frame
# (which ones depends on the frame's size): enough to push a mirrored re-encode past 31. Hashing the turned pixels
# is exact (the unit tests check it) for 8 PDQ runs instead of 1, ~3 ms each on a 640x360 frame.
_TURNS = (
    lambda f: f,
    lambda f: np.rot90(f, 1),
    lambda f: np.rot90(f, 2),
    lambda f: np.rot90(f, 3),
    lambda f: f[::-1],
    lambda f: f[:, ::-1],
    lambda f: f.transpose(1, 0, 2),
    lambda f: np.rot90(f, 2).transpose(1, 0, 2),
)


def frame_hashes(
    frame: np.ndarray, crop_levels: Sequence[float] = CROP_LEVELS
) -> tuple[np.ndarray, np.ndarray, int]:
    """One frame's (8 turned hashes (8, 32) in TRANSFORMS order, crop hashes (len(crop_levels), 32), quality)."""
    rgb = np.ascontiguousarray(frame, dtype=np.uint8)
    hashed = [hash_frame(turn(rgb)) for turn in _TURNS]
    turned = np.stack([h for h, _ in hashed])
    crops = [hash_frame(centred_crop(rgb, level))[0] for level in crop_levels]
    return turned, np.array(crops, dtype=np.uint8).reshape(-1, HASH_BYTES), hashed[0][1]


def video_signature(frames: Iterable[np.ndarray], crop_levels: Sequence[float] = CROP_LEVELS) -> VideoSignature:
    """The signature of a video from its sampled frames (see `fyp.moderation.frames`)."""
    per_frame = [frame_hashes(frame, crop_levels) for frame in frames]
    n = len(per_frame)
    turned = np.array([t for t, _, _ in per_frame], dtype=np.uint8).reshape(n, len(TRANSFORMS), HASH_BYTES)
    crops = np.array([c for _, c, _ in per_frame], dtype=np.uint8).reshape(n, len(crop_levels), HASH_BYTES)
    return VideoSignature(hashes=turned[:, 0].copy(), qualities=np.array([q for _, _, q in per_frame], dtype=np.int16),
                          crops=crops, crop_levels=tuple(crop_levels), turned=turned)


def _rank(match: DuplicateMatch) -> tuple[float, float, int]:
    return (match.query_match, match.target_match, -match.min_distance)


def _near(
    query_words: np.ndarray, stored_words: np.ndarray, max_distance: int, scratch: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, distances) of the stored hashes (words laid out (4, n)) within max_distance of one hash (4 words).

    Word-major storage makes each XOR + popcount a pass over one contiguous column. Only the first two words are
    compared with every row: the distance over those 128 bits is a lower bound of the whole, and unrelated hashes
    differ in ~64 of them, so few rows are within max_distance there, and only those are compared on the other two
    words. Exact, and with `scratch` (a uint64 and a uint8 array of n, reused across calls) nothing of size n is
    allocated. At 100k videos this took a 4-frame query from 1.78 s to 0.50 s of CPU (p50), against XOR +
    popcount of all four words into new arrays (docs/MODERATION.md, "Edited copies").
    """
    xor, dist = scratch
    np.bitwise_xor(stored_words[0], query_words[0], out=xor)
    np.bitwise_count(xor, out=dist)
    np.bitwise_xor(stored_words[1], query_words[1], out=xor)
    dist += np.bitwise_count(xor)  # two words: at most 128, so uint8 holds it
    (rows,) = np.nonzero(dist <= max_distance)
    total = dist[rows].astype(np.uint16)
    for w in range(2, _WORDS):
        total += np.bitwise_count(stored_words[w][rows] ^ query_words[w])
    keep = total <= max_distance
    return rows[keep], total[keep]


def match_signatures(
    query: VideoSignature, target: VideoSignature, policy: DuplicatePolicy | None = None
) -> DuplicateMatch | None:
    """Compare two signatures directly; the match carries an empty video_id. None when they do not match."""
    policy = policy or DuplicatePolicy()
    index = PdqIndex(policy=policy)
    index.add("", target)
    return index.query(query)


class PdqIndex:
    """An in-memory index of earlier videos' usable frame hashes (whole frames and their crops), by brute force.

    >>> index = PdqIndex()
    >>> len(index)
    0
    """

    def __init__(self, *, policy: DuplicatePolicy | None = None) -> None:
        self.policy = policy or DuplicatePolicy()
        self._ids: list[str] = []
        self._slot: dict[str, int] = {}
        self._frames_of: list[int] = []  # usable frames per slot; 0 for a replaced or empty signature
        self._words = np.empty((_WORDS, 0), dtype=np.uint64)  # stored hashes, word-major (see _near)
        self._owner = np.empty(0, dtype=np.int32)  # slot of each stored row; -1 once replaced
        self._frame = np.empty(0, dtype=np.int32)  # which usable frame of its slot each row hashes
        self._rows = 0

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._slot

    def add(self, video_id: str, signature: VideoSignature) -> None:
        """Store (or replace) a video's usable frames; one without any usable frame is kept, never matched."""
        if video_id in self._slot:
            old = self._slot[video_id]
            self._owner[: self._rows][self._owner[: self._rows] == old] = -1
            self._frames_of[old] = 0
        slot = len(self._ids)
        self._ids.append(video_id)
        self._slot[video_id] = slot
        stored = signature.stored_hashes(self.policy.min_quality)  # (frames, 1 + crops, 32)
        self._frames_of.append(len(stored))
        frames = np.repeat(np.arange(len(stored), dtype=np.int32), stored.shape[1])
        self._append_rows(stored.reshape(-1, HASH_BYTES), np.full(len(frames), slot), frames)

    def _append_rows(self, rows: np.ndarray, owners: np.ndarray, frames: np.ndarray) -> None:
        needed = self._rows + len(rows)
        if needed > self._words.shape[1]:
            # Amortised growth: each add stays O(frames), not O(index).
            capacity = max(needed, 2 * self._words.shape[1], 1024)
            grown = np.zeros((_WORDS, capacity), dtype=np.uint64)
            grown[:, : self._rows] = self._words[:, : self._rows]
            self._words = grown
            self._owner = np.resize(self._owner, capacity)
            self._frame = np.resize(self._frame, capacity)
        self._words[:, self._rows : needed] = np.ascontiguousarray(rows).view(np.uint64).T
        self._owner[self._rows : needed] = owners
        self._frame[self._rows : needed] = frames
        self._rows = needed

    def query(self, signature: VideoSignature, *, exclude: str | None = None) -> DuplicateMatch | None:
        """The earlier video that `signature` matches best (most query frames matched), or None.

        exclude: a video id never to match, e.g. the video itself when a message is processed again.
        """
        query = signature.query_hashes(self.policy.min_quality, self.policy.transforms)  # (frames, turns, 32)
        if not len(query) or not self._rows:
            return None
        frames, turns = query.shape[:2]
        hits: list[tuple[np.ndarray, ...]] = []
        stored = self._words[:, : self._rows]
        words = np.ascontiguousarray(query).view(np.uint64).reshape(frames, turns, _WORDS)
        scratch = (np.empty(self._rows, dtype=np.uint64), np.empty(self._rows, dtype=np.uint8))
        for qi in range(frames):
            for ti in range(turns):
                row, dist = _near(words[qi, ti], stored, self.policy.max_distance, scratch)
                if len(row):
                    hits.append((np.full(len(row), qi), np.full(len(row), ti), row, dist))
        if not hits:
            return None
        q_hit, t_hit, row, dist = (np.concatenate(parts) for parts in zip(*hits, strict=True))
        owner = self._owner[row]
        names = self.policy.transforms if signature.turned.shape[1] else ("identity",)
        best: DuplicateMatch | None = None
        for slot in np.unique(owner[owner >= 0]).tolist():
            video_id = self._ids[slot]
            if video_id == exclude:
                continue
            for ti in np.unique(t_hit[owner == slot]).tolist():
                # One transform at a time: a copy is turned the same way throughout.
                mine = (owner == slot) & (t_hit == ti)
                match = DuplicateMatch(
                    video_id=video_id,
                    query_match=len(np.unique(q_hit[mine])) / frames,
                    target_match=len(np.unique(self._frame[row[mine]])) / self._frames_of[slot],
                    min_distance=int(dist[mine].min()),
                    transform=names[ti],
                )
                if match.query_match < self.policy.min_query_match:
                    continue
                if match.target_match < self.policy.min_target_match:
                    continue
                if best is None or _rank(match) > _rank(best):
                    best = match
        return best

    def save(self, path: str | Path) -> None:
        """Write every stored video's usable frame hashes to an .npz file (quality is not kept: all passed)."""
        live = self._owner[: self._rows] >= 0
        np.savez(
            Path(path),
            ids=np.array(self._ids, dtype=np.str_),
            hashes=np.ascontiguousarray(self._words[:, : self._rows][:, live].T).view(np.uint8),
            owner=self._owner[: self._rows][live],
            frame=self._frame[: self._rows][live],
            frames_of=np.array(self._frames_of, dtype=np.int64),
        )

    @classmethod
    def load(cls, path: str | Path, *, policy: DuplicatePolicy | None = None) -> PdqIndex:
        with np.load(Path(path), allow_pickle=False) as data:
            if "frame" not in data:
                raise ValueError(f"{path}: an index saved before crop hashes (no 'frame' array); rebuild it")
            index = cls(policy=policy)
            index._ids = [str(v) for v in data["ids"]]
            index._frames_of = [int(v) for v in data["frames_of"]]
            # A replaced id appears at several slots; the last one is live.
            index._slot = {video_id: slot for slot, video_id in enumerate(index._ids)}
            index._append_rows(data["hashes"], data["owner"], data["frame"])
        return index


class _RedisList(Protocol):
    """The part of a redis-py client that RedisPdqIndex uses."""

    def rpush(self, name: str, *values: bytes) -> Any: ...

    def lrange(self, name: str, start: int, end: int) -> Sequence[bytes]: ...


class RedisPdqIndex:
    """A PdqIndex shared through Redis: an append-only list of `video_id \\n signature` records.

    Each worker keeps the whole index in memory and, before each query, reads only the records appended since
    its last read (LRANGE from its offset), so many moderator workers see each other's videos without ever
    reloading everything. The list is the store; the in-memory index is a cache that any worker can rebuild.

    legacy_key: a list of format-1 records (before crop hashes; `VideoSignature.from_v1_bytes`), read once,
        before `key`, and never written: its videos stay matchable as they are and turned, not when cropped.
    """

    def __init__(
        self, client: _RedisList, *, key: str = "fyp:moderation:pdq:v2", legacy_key: str | None = None,
        policy: DuplicatePolicy | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.legacy_key = legacy_key
        self.index = PdqIndex(policy=policy)
        self._offset = 0
        self._legacy_read = legacy_key is None

    def __len__(self) -> int:
        self.sync()
        return len(self.index)

    def _read(self, key: str, offset: int, parse: Callable[[bytes], VideoSignature]) -> int:
        """Add the records of `key` from `offset` on to the index; returns the offset after the last one."""
        while True:
            # Pages, so that a fresh worker's first sync is many bounded replies, not one huge one.
            records = self.client.lrange(key, offset, offset + _SYNC_PAGE - 1)
            for record in records:
                raw_id, sep, payload = bytes(record).partition(b"\n")
                if not sep:
                    raise ValueError(f"malformed record at {key}[{offset}]")
                self.index.add(raw_id.decode(), parse(payload))
                offset += 1
            if len(records) < _SYNC_PAGE:
                return offset

    def sync(self) -> int:
        """Load the records appended since the last sync (the legacy list too, the first time); returns how many
        there were."""
        loaded = 0
        if not self._legacy_read:
            loaded = self._read(self.legacy_key, 0, VideoSignature.from_v1_bytes)
            self._legacy_read = True
        offset, self._offset = self._offset, self._read(self.key, self._offset, VideoSignature.from_bytes)
        return loaded + self._offset - offset

    def add(self, video_id: str, signature: VideoSignature) -> None:
        if "\n" in video_id:
            raise ValueError(f"video_id must not contain a newline: {video_id!r}")
        self.client.rpush(self.key, video_id.encode() + b"\n" + signature.to_bytes())
        self.sync()

    def query(self, signature: VideoSignature, *, exclude: str | None = None) -> DuplicateMatch | None:
        self.sync()
        return self.index.query(signature, exclude=exclude)
