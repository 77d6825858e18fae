"""Training data for the two towers from engagement history rows (history.engagement_events).

A positive is a (user, video) pair the user engaged with: a watch to >= 95 % (a completion, as the features
define it), a watch of >= LONG_WATCH_MS, a like, or a share. Each pair counts once, at its first positive
event. For every positive, the user tower's inputs are computed as of just before it, from earlier rows only:
the last `history_len` positives of that user, and the 24 h window counts of UserFeatures (the same
definitions the features job writes to Redis), so training sees what serving would have seen.

Pure: columns in, numpy arrays out. `fyp.embeddings.lake` reads the columns from Iceberg.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fyp.embeddings.meta import VideoMeta, user_feature_vector

__all__ = [
    "COMPLETION_FRACTION",
    "HISTORY_COLUMNS",
    "LONG_WATCH_MS",
    "SKIP_DWELL_MS",
    "Interactions",
    "interactions_from_columns",
    "positive_mask",
]

HISTORY_COLUMNS = ("event_type", "event_time", "user_id", "video_id", "author_id", "sound_id", "hashtags",
                   "watch_ms", "video_duration_ms", "dwell_ms", "action")
COMPLETION_FRACTION = 0.95  # features/engagement/common.py
SKIP_DWELL_MS = 2000  # features/engagement/common.py
LONG_WATCH_MS = 10_000
FEATURE_WINDOW_MS = 24 * 3600 * 1000


@dataclass(frozen=True, kw_only=True)
class Interactions:
    """Positives sorted by time, with the user tower's inputs as of each one.

    videos: the catalogue (every video in the rows); `video`, `history` index into it.
    user, video, time_ms: (n,) per positive. history: (n, history_len) earlier positives of the same user,
    oldest first and right-aligned, -1 pads. features: (n, USER_FEATURE_DIM) float32.
    """

    videos: tuple[VideoMeta, ...]
    user_ids: tuple[str, ...]
    user: np.ndarray
    video: np.ndarray
    time_ms: np.ndarray
    history: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.user)

    def split_time(self, test_fraction: float) -> int:
        """The first time (ms) of the held-out tail: the last `test_fraction` of positives by time."""
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        if len(self) < 2:
            raise ValueError(f"need at least 2 positives to split, got {len(self)}")
        return int(self.time_ms[min(int(len(self) * (1 - test_fraction)), len(self) - 1)])


def _array(columns: Mapping[str, Any], name: str, dtype: Any, fill: Any) -> np.ndarray:
    values = _list(columns[name])
    return np.array([fill if v is None else v for v in values], dtype=dtype)


def positive_mask(event_type: np.ndarray, watch_ms: np.ndarray, duration_ms: np.ndarray,
                  action: np.ndarray) -> np.ndarray:
    """Which rows are positives (module docstring).

    >>> positive_mask(np.array(["watch", "watch", "like", "like", "skip"]), np.array([9500, 3000, 0, 0, 0]),
    ...               np.array([10000, 20000, 0, 0, 0]), np.array(["", "", "LIKE", "UNLIKE", ""])).tolist()
    [True, False, True, False, False]
    """
    watch = event_type == "watch"
    complete = watch & (duration_ms > 0) & (watch_ms >= COMPLETION_FRACTION * duration_ms)
    long_watch = watch & (watch_ms >= LONG_WATCH_MS)
    like = (event_type == "like") & (action != "UNLIKE")
    return complete | long_watch | like | (event_type == "share")


def _catalogue(video_ids: np.ndarray, first_row: np.ndarray, video_of_row: np.ndarray,
               columns: Mapping[str, Any], duration: np.ndarray) -> tuple[VideoMeta, ...]:
    """One VideoMeta per video: author, sound and hashtags from its first row, the longest duration seen."""
    authors, sounds, tags = (_list(columns[c]) for c in ("author_id", "sound_id", "hashtags"))
    longest = np.zeros(len(video_ids), dtype=np.int64)
    np.maximum.at(longest, video_of_row, duration)
    return tuple(
        VideoMeta(video_id=str(v), author_id=authors[r] or None, sound_id=sounds[r] or None,
                  hashtags=tuple(tags[r] or ()), duration_ms=int(d))
        for v, r, d in zip(video_ids, first_row.tolist(), longest.tolist(), strict=True))


def _list(values: Any) -> list[Any]:
    return values.to_pylist() if hasattr(values, "to_pylist") else list(values)


def interactions_from_columns(columns: Mapping[str, Sequence[Any]], *, history_len: int = 20) -> Interactions:
    """Rows as columns (HISTORY_COLUMNS; event_time as epoch ms or datetimes) -> Interactions."""
    event_type = _array(columns, "event_type", object, "")
    times = columns["event_time"]
    if hasattr(times, "cast"):  # pyarrow timestamps -> epoch ms
        import pyarrow as pa

        times = times.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()
    time_ms = np.asarray(times, dtype=np.int64)
    users_raw = _array(columns, "user_id", object, "")
    videos_raw = _array(columns, "video_id", object, "")
    watch_ms = _array(columns, "watch_ms", np.int64, 0)
    duration = _array(columns, "video_duration_ms", np.int64, 0)
    dwell = _array(columns, "dwell_ms", np.int64, 0)
    action = _array(columns, "action", object, "")
    good = (users_raw != "") & (videos_raw != "")

    video_ids, first_row, video_of_row = np.unique(videos_raw.astype(str), return_index=True, return_inverse=True)
    user_ids, user_of_row = np.unique(users_raw.astype(str), return_inverse=True)
    videos = _catalogue(video_ids, first_row, video_of_row, columns, duration)

    # Per-user cumulative counts of the feature events, to read any 24 h window before a positive.
    rows = np.flatnonzero(good)
    order = rows[np.lexsort((time_ms[rows], user_of_row[rows]))]
    t0 = int(time_ms[rows].min()) if len(rows) else 0
    key = user_of_row[order].astype(np.int64) * (1 << 42) + (time_ms[order] - t0)
    et, w, d = event_type[order], watch_ms[order], duration[order]
    plays = et == "watch"
    per_event = np.column_stack([  # USER_FEATURE_NAMES order
        et == "impression", plays, np.where(plays, w, 0),
        plays & (d > 0) & (w >= COMPLETION_FRACTION * d), (et == "skip") & (dwell[order] < SKIP_DWELL_MS),
        np.where(et == "like", np.where(action[order] == "UNLIKE", -1, 1), 0), et == "share",
        et == "not_interested"]).astype(np.float64)
    cumulative = np.vstack([np.zeros((1, per_event.shape[1])), np.cumsum(per_event, axis=0)])

    # Positives: first positive row per (user, video), sorted by time.
    pos = rows[positive_mask(event_type[rows], watch_ms[rows], duration[rows], action[rows])]
    pos = pos[np.argsort(time_ms[pos], kind="stable")]
    pair = user_of_row[pos].astype(np.int64) * len(video_ids) + video_of_row[pos]
    _, first = np.unique(pair, return_index=True)
    pos = pos[np.sort(first)]
    user, video, t = user_of_row[pos].astype(np.int64), video_of_row[pos].astype(np.int64), time_ms[pos]

    query = user * (1 << 42) + (t - t0)
    hi = np.searchsorted(key, query, side="left")  # rows strictly before the positive
    lo = np.searchsorted(key, query - FEATURE_WINDOW_MS, side="left")
    features = user_feature_vector(cumulative[hi] - cumulative[lo])

    # History: the same user's earlier positives, by position in the (user, time)-sorted positives.
    by_user = np.lexsort((t, user))
    history = np.full((len(pos), history_len), -1, dtype=np.int64)
    sorted_user, sorted_video = user[by_user], video[by_user]
    for back in range(1, history_len + 1):
        prev = np.arange(len(by_user)) - back
        ok = (prev >= 0) & (sorted_user[np.maximum(prev, 0)] == sorted_user)
        history[by_user[ok], history_len - back] = sorted_video[prev[ok]]
    return Interactions(videos=videos, user_ids=tuple(str(u) for u in user_ids), user=user, video=video,
                        time_ms=t, history=history, features=features)
