"""Point-in-time features: each training row's feature values and histories as Redis held them at the row's time.

A row at event time t sees exactly the admitted history rows of its entity with event_time < t (fyp.training.history:
the job's lateness rule and dedup). The entity's state is folded with the reference evaluator (the code
`fyp verify` and the Redis restore use), packed with `FeatureEvaluator.pack`, and decoded with serving's read-time
rules as of t (`fyp.serving.layout.decode_rows_at`): the value `FeatureClient` would have returned at t.

Sort-merge, one entity at a time: a set's rows and the rows' lookups are sorted by (entity, time), and one state
is folded along each entity's rows, answering each lookup as it is passed. Memory is the input, not one state
per entity (a video's state is ~10 KB). Two rules of the job and of Redis are replayed on the way:

- the job forgets an entity's state after `default_state_ttl` (longest window + 1 h) without an event, so a row
  after such a gap starts a fresh state (the decayed sums lose what came before, as in the job);
- Redis drops a key `ttl` after its last write: a lookup that long after the entity's newest row reads nothing.

Per-hashtag sets are summed over the row's distinct hashtags (null when none has a value), their ratios taken
of the sums. Histories (`SortedSetSpec`, per_event, keyed by user) replay the sorted-set writes: ZADD GT of each
matching row's score, trimmed to the highest `max_size`, the whole set gone `ttl` after its last write.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from featurespec import FeatureSet, SortedSetSpec
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import COLUMN_INDEX, Row, compile_predicate, compile_value
from featurespec.sql import default_state_ttl
from fyp.serving.layout import ReadPlan, decode_rows_at, read_columns

__all__ = ["FeatureBlock", "Lookups", "feature_block", "history_lists", "lookups", "packed_at"]

_HASHTAGS, _EVENT_TIME = COLUMN_INDEX["hashtags"], COLUMN_INDEX["event_time"]


def _ms(delta) -> int:
    return int(delta.total_seconds() * 1000)


@dataclass(frozen=True, kw_only=True)
class Lookups:
    """Entity lookups: read entity `keys[i]` as of `times[i]` (epoch ms) for training row `rows[i]`."""

    keys: list[str]
    times: np.ndarray
    rows: np.ndarray


@dataclass(frozen=True, kw_only=True)
class FeatureBlock:
    """One feature set's columns for every training row: values (rows x columns, NaN where absent) and whether
    the entity had a value (False: the columns are null)."""

    feature_set: FeatureSet
    columns: tuple[str, ...]
    values: np.ndarray
    present: np.ndarray


def _key_of(columns: Sequence[str]) -> Callable[[Row], list[str]]:
    """The keys a training row looks up for an entity of these key columns (a per-hashtag entity: one per distinct
    hashtag). The row's own event need not be one the set counts (an impression reads the user x hashtag set)."""
    if "hashtag" in columns:
        def keys(row: Row) -> list[str]:
            parts = [row[COLUMN_INDEX[c]] for c in columns if c != "hashtag"]
            if not all(parts):
                return []
            tags = dict.fromkeys(t for t in row[_HASHTAGS] or () if t)
            return [":".join(row[COLUMN_INDEX[c]] if c != "hashtag" else tag for c in columns) for tag in tags]
        return keys
    indexes = [COLUMN_INDEX[c] for c in columns]

    def key(row: Row) -> list[str]:
        parts = [row[i] for i in indexes]
        return [":".join(parts)] if all(parts) else []
    return key


def lookups(key_columns: Sequence[str], rows: Sequence[Row], times: np.ndarray) -> Lookups:
    """The lookups of training rows `rows` (their event times `times`) for an entity keyed by `key_columns`."""
    keys_of = _key_of(key_columns)
    keys: list[str] = []
    owners: list[int] = []
    for i, row in enumerate(rows):
        for key in keys_of(row):
            keys.append(key)
            owners.append(i)
    owner = np.asarray(owners, dtype=np.int64)
    return Lookups(keys=keys, times=times[owner] if len(owner) else np.empty(0, np.int64), rows=owner)


def _sorted(keys: list[str], times: np.ndarray, codes: dict[str, int]) -> tuple[list[int], list[int], np.ndarray]:
    """Codes and times of `keys` as lists, and the order that sorts them by (entity, time, position)."""
    code = np.fromiter((codes.setdefault(k, len(codes)) for k in keys), np.int64, len(keys))
    order = np.lexsort((np.arange(len(keys)), times, code))
    return code.tolist(), times.tolist(), order


def packed_at(evaluator: FeatureEvaluator, rows: Sequence[Row], admitted: np.ndarray, times: np.ndarray,
              wanted: Lookups, *, state_ttl_ms: int | None = None, ttl_ms: int | None = None) -> list[bytes | None]:
    """Each lookup's packed value: the entity's state over its admitted rows with event_time < the lookup's time,
    packed by `evaluator.pack`; None when the entity has no such row, or Redis would have dropped the key.

    rows, admitted, times: the history (engagement rows, which the job folds, their event times).
    state_ttl_ms: an idle gap after which the job starts the entity afresh (default: the set's default_state_ttl).
    ttl_ms: how long Redis keeps a key after its last write (default: the set's ttl).
    """
    feature_set = evaluator.feature_set
    state_ttl_ms = _ms(default_state_ttl(feature_set)) if state_ttl_ms is None else state_ttl_ms
    ttl_ms = _ms(feature_set.ttl) if ttl_ms is None else ttl_ms
    event_keys: list[str] = []
    event_rows: list[int] = []
    keys_of = evaluator.keys
    for i in np.flatnonzero(admitted).tolist():
        for key in keys_of(rows[i]):  # a repeated hashtag updates its key twice, as after the job's UNNEST
            event_keys.append(key)
            event_rows.append(i)
    codes: dict[str, int] = {}
    e_code, e_time, e_order = _sorted(event_keys, times[np.asarray(event_rows, dtype=np.int64)], codes)
    q_code, q_time, q_order = _sorted(wanted.keys, wanted.times, codes)

    out: list[bytes | None] = [None] * len(wanted.keys)
    new_state, update, pack, event_time_of = evaluator.new_state, evaluator.update, evaluator.pack, evaluator.event_time
    e_order_list, n_events = e_order.tolist(), len(e_order)
    i = 0
    code = -1
    state = None
    last = 0
    packed: bytes | None = None  # the current state's packed value, until the next update
    for q in q_order.tolist():
        c, t = q_code[q], q_time[q]
        while i < n_events:
            e = e_order_list[i]
            ec, et = e_code[e], e_time[e]
            if ec > c or (ec == c and et >= t):  # strictly before t: the row itself and later rows never count
                break
            if ec != code or et - last > state_ttl_ms:
                code, state = ec, new_state()
            update(state, rows[event_rows[e]])
            last, packed = et, None
            i += 1
        if code != c or state is None:
            continue
        if t - event_time_of(state) >= ttl_ms:  # the key expired in Redis
            continue
        if packed is None:
            packed = pack(state)
        out[q] = packed
    return out


def feature_block(feature_set: FeatureSet, rows: Sequence[Row], admitted: np.ndarray, times: np.ndarray,
                  training_rows: Sequence[Row], training_times: np.ndarray) -> FeatureBlock:
    """`feature_set`'s decoded columns (`read_columns`: values, then ratios) for each training row, as of its time."""
    evaluator = FeatureEvaluator.of(feature_set)
    plan = ReadPlan.of(feature_set)
    wanted = lookups(feature_set.entity.key_columns, training_rows, training_times)
    values, event_times = decode_rows_at(plan, packed_at(evaluator, rows, admitted, times, wanted), wanted.times)
    found = event_times > 0
    columns = read_columns(plan)
    n = len(training_rows)
    if not feature_set.entity.explodes_hashtags:
        matrix = np.full((n, len(columns)), np.nan)
        present = np.zeros(n, dtype=bool)
        matrix[wanted.rows[found]] = values[found]  # one lookup per row at most
        present[wanted.rows[found]] = True
        return FeatureBlock(feature_set=feature_set, columns=columns, values=matrix, present=present)
    # Per hashtag: the sum over the row's distinct hashtags that have a value; ratios of the sums.
    width = len(plan.columns)
    sums = np.zeros((n, width))
    np.add.at(sums, wanted.rows[found], values[found, :width])
    present = np.bincount(wanted.rows[found], minlength=n) > 0
    matrix = np.full((n, len(columns)), np.nan)
    matrix[present, :width] = sums[present]
    for i, (_, numerator, denominator) in enumerate(plan.ratios):
        den = sums[present, denominator]
        with np.errstate(divide="ignore", invalid="ignore"):
            matrix[present, width + i] = np.where(den > 0, sums[present, numerator] / den, np.nan)
    return FeatureBlock(feature_set=feature_set, columns=columns, values=matrix, present=present)


def history_lists(spec: SortedSetSpec, rows: Sequence[Row], admitted: np.ndarray, times: np.ndarray,
                  training_rows: Sequence[Row], training_times: np.ndarray) -> list[list[str]]:
    """A per-event serving set (e.g. recent positives) as of each training row's time: its members, newest first.

    Replays the sink (docs/REDIS_LAYOUT.md, zset): each admitted matching row with event_time < t is a ZADD GT of
    its score, the set trimmed to the `max_size` highest scores (ties: the greater member first, as ZREVRANGE), and
    the whole key gone `ttl` after its last write (then it starts empty again)."""
    if not spec.per_event or spec.key_columns != ("user_id",):
        raise ValueError(f"{spec.qualified_name}: only per-event sets keyed by user_id are supported")
    where = compile_predicate(spec.where)
    score_of = compile_value(spec.score)
    user, member = COLUMN_INDEX["user_id"], COLUMN_INDEX[spec.member_column]
    ttl_ms, size = _ms(spec.ttl), spec.max_size
    event_keys: list[str] = []
    event_rows: list[int] = []
    for i in np.flatnonzero(admitted).tolist():
        row = rows[i]
        if row[user] and row[member] and where(row):
            event_keys.append(row[user])
            event_rows.append(i)
    wanted = lookups(("user_id",), training_rows, training_times)
    codes: dict[str, int] = {}
    e_code, e_time, e_order = _sorted(event_keys, times[np.asarray(event_rows, dtype=np.int64)], codes)
    q_code, q_time, q_order = _sorted(wanted.keys, wanted.times, codes)
    out: list[list[str]] = [[] for _ in training_rows]
    e_order_list, n_events = e_order.tolist(), len(e_order)
    i, code, last = 0, -1, 0
    members: dict[str, float] = {}
    for q in q_order.tolist():
        c, t = q_code[q], q_time[q]
        while i < n_events:
            e = e_order_list[i]
            ec, et = e_code[e], e_time[e]
            if ec > c or (ec == c and et >= t):
                break
            if ec != code or et - last >= ttl_ms:
                code, members = ec, {}
            score = score_of(rows[event_rows[e]])
            if score is not None:
                name = rows[event_rows[e]][member]
                members[name] = max(members.get(name, score), float(score))  # ZADD GT
                if len(members) > size:  # ZREMRANGEBYRANK 0 -(N+1): the lowest (score, member) goes
                    del members[min(members.items(), key=lambda m: (m[1], m[0]))[0]]
            last = et
            i += 1
        if code != c or t - last >= ttl_ms:
            continue
        newest = heapq.nlargest(size, members.items(), key=lambda m: (m[1], m[0]))
        out[int(wanted.rows[q])] = [name for name, _ in newest]
    return out
