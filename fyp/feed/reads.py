"""The feed's two Redis reads, one round trip each (`fyp.serving.roundtrip.read`: a single Redis or a Redis Cluster,
single-key commands only, so no command crosses hash slots):

1. `read_filter_state`: for the user and every candidate (~500), what the filters, the reranker's age rule and the
   coarse ranker need: the recent-seen and not-interested sets, the user's profile `birth_date`
   (`fyp.feed.profiles`), each candidate's catalogue record (`fyp:video:v1:{id}`: status, author, sound, hashtags,
   audio_muted, moderation's actions) and its `video_engagement` row (the coarse ranker's popularity fallback).
2. `read_ranker_columns`: for the user and the ~100 candidates the coarse ranker kept, every column the fine
   ranker's input spec names (`<set>__<column>`): the user, video, author, sound, user x author and user x hashtag
   sets as `FeatureClient` decodes them (window and decay rules as of now; ratios of the decoded values). The
   user x hashtag columns are summed over the video's distinct hashtags that have a value, ratios of the sums, as
   the training set builds them (fyp/training/pointintime.py), so serving and training rows agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import orjson

from connectors.redis_video_store import video_key
from features import SERVED_FEATURE_SETS
from features.serving_sets import NOT_INTERESTED_AUTHORS, NOT_INTERESTED_VIDEOS, RECENT_SEEN
from featurespec import FeatureSet
from fyp.feed.filters import UserFilters, VideoRecord
from fyp.feed.profiles import BIRTH_DATE_FIELD, profile_key, today, viewer_age
from fyp.serving.layout import ReadPlan, decode_matrix, read_columns
from fyp.serving.roundtrip import read
from udfs.limits import invalid_id_reason

__all__ = ["VIDEO_PLAN", "FilterState", "read_filter_state", "read_ranker_columns", "records_in_order", "set_columns"]

RECORD_FIELDS = ("status", "author_id", "sound_id", "hashtags", "audio_muted", "actions", "verdict")
AGE_RESTRICT = "AGE_RESTRICT"  # a moderation action (udfs/upload_lifecycle.py moderation_actions)
_PLANS: dict[str, ReadPlan] = {fs.name: ReadPlan.of(fs) for fs in SERVED_FEATURE_SETS}
_BY_ENTITY: dict[str, FeatureSet] = {}
for _fs in SERVED_FEATURE_SETS:
    _BY_ENTITY.setdefault(_fs.entity.name, _fs)
VIDEO_PLAN = ReadPlan.of(_BY_ENTITY["video"])


@dataclass(frozen=True, kw_only=True)
class FilterState:
    """The user's filter sets, the viewer's age class (`fyp.feed.profiles.viewer_age`), the candidates' records
    (id -> record) and their video features (rows in candidate order, `VIDEO_PLAN.columns`, NaN where a video has
    none)."""

    user: UserFilters
    viewer_age: str
    records: dict[str, VideoRecord]
    video_columns: tuple[str, ...]
    video_features: np.ndarray


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _tags(value: bytes | str | None) -> tuple[str, ...]:
    if not value:
        return ()
    try:
        tags = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ()
    return tuple(str(t) for t in tags) if isinstance(tags, list) else ()


def _restricted(actions: bytes | str | None, verdict: bytes | str | None) -> bool:
    if _text(verdict) == AGE_RESTRICT:
        return True
    if not actions:
        return False
    try:
        listed = orjson.loads(actions)
    except orjson.JSONDecodeError:
        return True  # a list that cannot be read cannot vouch for the video: the safe side
    return isinstance(listed, list) and AGE_RESTRICT in listed


def _record(video_id: str, values: Sequence[Any]) -> VideoRecord:
    status, author, sound, hashtags, muted, actions, verdict = values
    if status is None and author is None:
        return VideoRecord(video_id=video_id, exists=False)
    return VideoRecord(video_id, True, _text(status) or "", _text(author) or None, _text(sound) or None,
                       _tags(hashtags), (_text(muted) or "").lower() in ("true", "1"), _restricted(actions, verdict))


def _pairs(flat: Sequence[Any]) -> dict[str, float]:
    """A ZRANGE ... WITHSCORES reply (flat member, score, ...) as member -> score."""
    return {_text(flat[i]): float(flat[i + 1]) for i in range(0, len(flat), 2)}  # type: ignore[misc]


def read_filter_state(redis: Any, user_id: str, video_ids: Sequence[str], *, now_ms: int) -> FilterState:
    """Round trip 1 (module docstring)."""
    prefix = VIDEO_PLAN.feature_set.key_prefix
    fields = list(RECORD_FIELDS)
    commands = [("ZRANGE", RECENT_SEEN.key_prefix + user_id, 0, -1),
                ("ZRANGE", NOT_INTERESTED_VIDEOS.key_prefix + user_id, 0, -1),
                ("ZRANGE", NOT_INTERESTED_AUTHORS.key_prefix + user_id, 0, -1, "WITHSCORES"),
                ("HMGET", profile_key(user_id), BIRTH_DATE_FIELD),
                *(("HMGET", video_key(v), *fields) for v in video_ids)]
    replies = read(redis, [prefix + v for v in video_ids], commands)
    n = len(video_ids)
    rows, (seen, disliked, authors, profile), hashes = replies[:n], replies[n:n + 4], replies[n + 4:]
    records = {v: _record(v, values) for v, values in zip(video_ids, hashes, strict=True)}
    features, _ = decode_matrix(VIDEO_PLAN, rows, now_ms)
    user = UserFilters(recent_seen=frozenset(_text(m) for m in seen),
                       not_interested_videos=frozenset(_text(m) for m in disliked),
                       not_interested_authors=_pairs(authors))
    return FilterState(user=user, viewer_age=viewer_age(profile[0], today(now_ms)), records=records,
                       video_columns=VIDEO_PLAN.columns, video_features=features)


def _with_ratios(plan: ReadPlan, matrix: np.ndarray) -> np.ndarray:
    """The decoded values followed by the plan's ratios (NaN where the denominator is not positive)."""
    if not plan.ratios:
        return matrix
    # Every ratio in one array operation: a loop with an errstate per ratio cost more than the division.
    numerators = [num for _, num, _ in plan.ratios]
    denominators = [den for _, _, den in plan.ratios]
    den = matrix[:, denominators]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(den > 0, matrix[:, numerators] / den, np.nan)
    return np.hstack([matrix, ratios])


@lru_cache(maxsize=8192)
def _id_ok(part: str) -> bool:
    return not invalid_id_reason(part)


def _valid(*parts: str | None) -> bool:
    # Cached: one request checks the user id and each author ~100 times, and the check was half the read's time.
    return all(p and _id_ok(p) for p in parts)


@lru_cache(maxsize=64)  # asked per set on every feed
def set_columns(set_name: str) -> tuple[str, ...]:
    """The `<set>__<column>` names one served set gives the ranker."""
    return tuple(f"{set_name}__{c}" for c in read_columns(_PLANS[set_name]))


def read_ranker_columns(redis: Any, set_names: Sequence[str], user_id: str, records: Sequence[VideoRecord], *,
                        now_ms: int) -> dict[str, np.ndarray]:
    """Round trip 2: `<set>__<column>` -> one value per record (NaN where missing), for the sets named."""
    n = len(records)
    plans = {}
    for name in set_names:
        if name not in _PLANS:
            raise ValueError(f"the ranker reads set {name!r}, which serving does not read (features.READ_VERSIONS)")
        plans[name] = _PLANS[name]
    # Per set: the keys to read, and for each key the row it belongs to.
    wanted: dict[str, tuple[list[str], list[int]]] = {}
    for name, plan in plans.items():
        entity, prefix = plan.feature_set.entity, plan.feature_set.key_prefix
        keys: list[str] = []
        rows: list[int] = []
        for row, record in enumerate(records):
            parts: list[tuple[str | None, ...]]
            if entity.name == "user":
                parts = [(user_id,)] if row == 0 else []
            elif entity.name == "video":
                parts = [(record.video_id,)]
            elif entity.name == "author":
                parts = [(record.author_id,)]
            elif entity.name == "sound":
                parts = [(record.sound_id,)]
            elif entity.name == "user_author":
                parts = [(user_id, record.author_id)]
            elif entity.name == "user_hashtag":
                parts = [(user_id, tag) for tag in dict.fromkeys(record.hashtags)]
            else:
                raise ValueError(f"no key rule for entity {entity.name!r}")
            for key_parts in parts:
                if _valid(*key_parts):
                    keys.append(prefix + ":".join(key_parts))  # type: ignore[arg-type]
                    rows.append(row)
        wanted[name] = (keys, rows)
    flat = read(redis, [key for keys, _ in wanted.values() for key in keys])
    columns: dict[str, np.ndarray] = {}
    start = 0
    for name, (keys, rows) in wanted.items():
        plan = plans[name]
        width = len(plan.columns)
        values, start = flat[start:start + len(keys)], start + len(keys)
        decoded, _ = decode_matrix(plan, values, now_ms)
        sums = np.zeros((n, width))
        present = np.zeros(n, dtype=bool)
        found = ~np.isnan(decoded).all(axis=1) if len(keys) else np.zeros(0, dtype=bool)
        if plan.feature_set.entity.name == "user":
            if found.any():
                sums[:] = decoded[0]
                present[:] = True
        elif found.any():
            index = np.asarray(rows)[found]
            np.add.at(sums, index, decoded[found])  # a user x hashtag row sums its hashtags; others have one key
            present[index] = True
        matrix = np.full((n, width), np.nan)
        matrix[present] = sums[present]
        full = _with_ratios(plan, matrix)
        for i, column in enumerate(set_columns(name)):
            columns[column] = full[:, i]
    return columns


def records_in_order(records: Mapping[str, VideoRecord], video_ids: Sequence[str]) -> list[VideoRecord]:
    """The records of `video_ids` in that order (a missing one: an empty record)."""
    return [records.get(v) or VideoRecord(video_id=v, exists=False) for v in video_ids]
