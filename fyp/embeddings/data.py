"""The two towers' training data, from the rows of the training table `training.watch_outcomes`.

A row is an impression (training/watch_outcomes.py) with its labels, its user's features and recent
positives as of its time, point-in-time correct (docs/TRAINING.md). A **positive** is a row whose viewer
completed, liked or shared the video within the label window (`label_completed OR label_liked OR
label_shared`): the same three events that make a video one of the user's recent positives
(features/serving_sets.py RECENT_POSITIVES), so what the model learns to retrieve is what its user tower reads
as history. Skips are not positives (they are the opposite), nor follows (about the author, and rare).

The catalogue is every video the rows show; its content fields (author, sound, hashtags) come from its first
row, as a new upload's would from its metadata.

Pure: columns in, arrays out. `fyp.embeddings.lake` reads the columns from Iceberg.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from featurespec.training import feature_column
from fyp.embeddings.inputs import HISTORY_SET, USER_FEATURE_COLUMNS, USER_FEATURE_SET, VIDEO_FEATURE_SET

__all__ = [
    "DAY_MS",
    "POSITIVE_LABELS",
    "SPINE_COLUMNS",
    "Catalogue",
    "Positives",
    "VideoFeatures",
    "positives_from_columns",
    "table_columns",
]

DAY_MS = 86_400_000
POSITIVE_LABELS = ("completed", "liked", "shared")
SPINE_COLUMNS = ("event_time", "user_id", "video_id", "author_id", "sound_id", "hashtags")


def table_columns(feature_columns: Sequence[str] = USER_FEATURE_COLUMNS,
                  video_feature_columns: Sequence[str] = ()) -> tuple[str, ...]:
    """The training-table columns the two towers read (video_feature_columns: the item tower's, if any)."""
    return (*SPINE_COLUMNS, *(f"label_{label}" for label in POSITIVE_LABELS), HISTORY_SET.name,
            *(feature_column(USER_FEATURE_SET, c) for c in feature_columns),
            *(feature_column(VIDEO_FEATURE_SET, c) for c in video_feature_columns))


_TIME_BITS = 42  # epoch ms < 2^42 until the year 2109; video index < 2^21 keeps the key an int64


@dataclass(frozen=True, kw_only=True)
class VideoFeatures:
    """The video_engagement.v1 values of every row read (positive or not), each as of its row's time, sorted by
    (video, time). The values of a video at time t are those of its latest row at or before t: stale by the time
    since that row, never from after t (a row's values see only events before it, docs/TRAINING.md). Training
    reads its negatives' values this way, and evaluation the catalogue's as of the held-out days' start, as an
    index built then would read them from Redis.

    video: (m,) catalogue indices; time_ms: (m,); values: (m, len(columns)) raw values, NaN where none.
    """

    columns: tuple[str, ...]
    video: np.ndarray
    time_ms: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        if len(self.video) and (self.video.max() >= 1 << (63 - _TIME_BITS) or self.time_ms.min() < 0
                                or self.time_ms.max() >= 1 << _TIME_BITS):
            raise ValueError("video indices or times out of range for VideoFeatures")

    @cached_property
    def _keys(self) -> np.ndarray:
        return (self.video.astype(np.int64) << _TIME_BITS) | self.time_ms.astype(np.int64)

    def at(self, videos: np.ndarray, time_ms: np.ndarray | int) -> np.ndarray:
        """(n, len(columns)) raw values of catalogue indices `videos` as of `time_ms` (one per video, or one for
        all); NaN for a video with no row by then.

        >>> f = VideoFeatures(columns=("plays_24h",), video=np.array([0, 0, 1]), time_ms=np.array([5, 9, 7]),
        ...                   values=np.array([[1.0], [2.0], [3.0]]))
        >>> f.at(np.array([0, 0, 1, 1]), np.array([4, 9, 7, 6])).ravel().tolist()
        [nan, 2.0, 3.0, nan]
        """
        videos = np.asarray(videos, dtype=np.int64)
        times = np.broadcast_to(np.asarray(time_ms, dtype=np.int64), videos.shape)
        at = np.searchsorted(self._keys, (videos << _TIME_BITS) | times, side="right") - 1
        found = (at >= 0) & (self.video[np.maximum(at, 0)] == videos) if len(self.video) else at >= 0
        out = np.full((len(videos), len(self.columns)), np.nan)
        out[found] = self.values[at[found]]
        return out


@dataclass(frozen=True, kw_only=True)
class Catalogue:
    """The videos the rows show, by index: their content fields and the time each was first shown (epoch ms)."""

    video_ids: tuple[str, ...]
    author_ids: tuple[str | None, ...]
    sound_ids: tuple[str | None, ...]
    hashtags: tuple[tuple[str, ...], ...]
    first_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.video_ids)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.video_ids)}

    def indices(self, video_ids: Sequence[str]) -> np.ndarray:
        """Catalogue indices of ids, -1 for an id not in the catalogue."""
        index = self._index
        return np.fromiter((index.get(v, -1) for v in video_ids), dtype=np.int64, count=len(video_ids))


@dataclass(frozen=True, kw_only=True)
class Positives:
    """The positive rows, sorted by time, with the user tower's raw inputs as of each.

    user_ids, video (catalogue index), time_ms: (n,). recent_positives: per row, the user's recent positives
    newest first (before the row). user_features: (n, len(feature_columns)) raw user_engagement.v1 values
    (NaN: none). rows: every row read (positive or not).
    """

    catalogue: Catalogue
    user_ids: np.ndarray
    video: np.ndarray
    time_ms: np.ndarray
    recent_positives: list[list[str]]
    user_features: np.ndarray
    feature_columns: tuple[str, ...]
    rows: int
    video_features: VideoFeatures | None = None

    def __len__(self) -> int:
        return len(self.video)

    def split_days(self, test_days: int) -> int:
        """The first time (ms) of the held-out tail: the start of the last `test_days` UTC days with rows."""
        days = np.unique(self.time_ms // DAY_MS)
        if test_days < 1:
            raise ValueError(f"test_days must be >= 1, got {test_days}")
        if len(days) <= test_days:
            raise ValueError(f"the positives cover {len(days)} day(s): need more than {test_days} to hold out "
                             f"{test_days} (read more days, or split by --test-fraction)")
        return int(days[-test_days]) * DAY_MS

    def split_fraction(self, test_fraction: float) -> int:
        """The first time (ms) of the held-out tail: the last `test_fraction` of positives by time."""
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        if len(self) < 2:
            raise ValueError(f"need at least 2 positives to split, got {len(self)}")
        return int(self.time_ms[min(int(len(self) * (1 - test_fraction)), len(self) - 1)])

    def new_positives(self) -> np.ndarray:
        """(n,) bool: the row's video is not already among the user's recent positives (a first engagement, not
        a repeat of one the history holds)."""
        return np.array([self.catalogue.video_ids[v] not in set(h)
                         for v, h in zip(self.video.tolist(), self.recent_positives, strict=True)], dtype=bool)

    def exclusions(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), HISTORY_SET.max_size) catalogue indices of each row's recent positives, -1 pads."""
        out = np.full((len(rows), HISTORY_SET.max_size), -1, dtype=np.int64)
        for i, row in enumerate(rows.tolist()):
            found = self.catalogue.indices(self.recent_positives[row][:HISTORY_SET.max_size])
            out[i, :len(found)] = found
        return out


def _list(values: Any) -> list[Any]:
    return values.to_pylist() if hasattr(values, "to_pylist") else list(values)


def _times_ms(values: Any) -> np.ndarray:
    if hasattr(values, "cast"):  # pyarrow timestamps -> epoch ms
        import pyarrow as pa

        return values.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()
    first = next(iter(values), None)
    if first is not None and hasattr(first, "timestamp"):
        return np.array([round(v.timestamp() * 1000) for v in values], dtype=np.int64)
    return np.asarray(values, dtype=np.int64)


def _catalogue(videos: list[str], authors: list[Any], sounds: list[Any], tags: list[Any],
               times: np.ndarray) -> tuple[Catalogue, np.ndarray]:
    """The catalogue (content fields from each video's first row by time) and each row's catalogue index."""
    ids, video_of_row = np.unique(np.asarray(videos, dtype=object).astype(str), return_inverse=True)
    order = np.lexsort((np.arange(len(times)), times))
    first = np.full(len(ids), -1, dtype=np.int64)
    seen_order = video_of_row[order]
    _, at = np.unique(seen_order, return_index=True)  # first position in time order of each video
    first[seen_order[at]] = order[at]
    rows = first.tolist()
    return Catalogue(video_ids=tuple(ids.tolist()), author_ids=tuple(authors[r] or None for r in rows),
                     sound_ids=tuple(sounds[r] or None for r in rows),
                     hashtags=tuple(tuple(tags[r] or ()) for r in rows), first_ms=times[first]), video_of_row


def positives_from_columns(columns: Mapping[str, Any], feature_columns: Sequence[str] = USER_FEATURE_COLUMNS,
                           video_feature_columns: Sequence[str] = ()) -> Positives:
    """Training-table rows as columns (`table_columns`; event_time as pyarrow timestamps, datetimes or epoch ms)
    -> the positives (with `VideoFeatures` of every row when video_feature_columns are asked). A feature column
    the rows lack reads as NaN (absent)."""
    times = _times_ms(columns["event_time"])
    users = np.asarray(_list(columns["user_id"]), dtype=object)
    videos = _list(columns["video_id"])
    good = np.array([bool(u) and bool(v) for u, v in zip(users, videos, strict=True)], dtype=bool)
    keep = np.flatnonzero(good)
    catalogue, video_of_row = _catalogue([videos[i] for i in keep], _pick(columns["author_id"], keep),
                                         _pick(columns["sound_id"], keep), _pick(columns["hashtags"], keep),
                                         times[keep])
    positive = np.zeros(len(times), dtype=bool)
    for label in POSITIVE_LABELS:
        positive |= np.array([bool(x) for x in _list(columns[f"label_{label}"])], dtype=bool)
    chosen = positive[keep]
    rows = keep[chosen]
    order = np.argsort(times[rows], kind="stable")
    rows, video = rows[order], video_of_row[chosen][order]
    history = _pick(columns[HISTORY_SET.name], rows)
    features = _feature_matrix(columns, USER_FEATURE_SET, feature_columns, rows)
    return Positives(catalogue=catalogue, user_ids=users[rows], video=video.astype(np.int64), time_ms=times[rows],
                     recent_positives=[list(h or ()) for h in history], user_features=features,
                     feature_columns=tuple(feature_columns), rows=len(times),
                     video_features=_video_features(columns, video_feature_columns, keep, video_of_row, times)
                     if video_feature_columns else None)


def _feature_matrix(columns: Mapping[str, Any], feature_set: Any, names: Sequence[str], rows: np.ndarray) -> np.ndarray:
    """(len(rows), len(names)) float64 of `feature_set`'s columns `names` at `rows`; NaN for a null value or a column
    the table lacks."""
    matrix = np.full((len(rows), len(names)), np.nan)
    for j, name in enumerate(names):
        column = feature_column(feature_set, name)
        if column in columns:
            matrix[:, j] = np.array([np.nan if v is None else v for v in _pick(columns[column], rows)],
                                    dtype=np.float64)
    return matrix

def _video_features(columns: Mapping[str, Any], names: Sequence[str], keep: np.ndarray, video_of_row: np.ndarray,
                    times: np.ndarray) -> VideoFeatures:
    """Every kept row's video_engagement values (NaN: none, or a column the rows lack), sorted by (video, time)."""
    order = np.lexsort((times[keep], video_of_row))
    rows = keep[order]
    values = _feature_matrix(columns, VIDEO_FEATURE_SET, names, rows)
    return VideoFeatures(columns=tuple(names), video=video_of_row[order].astype(np.int64), time_ms=times[rows],
                         values=values)


def _pick(values: Any, rows: np.ndarray) -> list[Any]:
    if hasattr(values, "take"):  # pyarrow: take before converting, so only the rows needed become objects
        import pyarrow as pa

        return values.take(pa.array(rows, type=pa.int64())).to_pylist()
    values = list(values)
    return [values[i] for i in rows.tolist()]
