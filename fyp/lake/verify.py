"""Online/offline consistency: recompute the Redis feature values from the Iceberg history, as Chronon does.

For one entity (or a sample), the history rows of that entity are folded with the very aggregates the job
runs (featurespec.reference.evaluate: the Java SLIDING_SUM / DECAYED_SUM semantics in Python, compiled from the same
feature declarations), packed like the Redis value, and compared column by column with what Redis holds. Both
sides are compared as of the value's own event time (the header of the packed value), never as of now, so the
read-time corrections of `FeatureClient` play no part.

The baseline recomputation applies the job's admission rules that the history can replay exactly: the feature
set's filters and keys, and one row per event_id. Where it disagrees with Redis, the documented causes
(docs/ANALYSTS.md, "Online/offline consistency") are tried, alone and together, as alternative recomputations:

    as_of          Redis reflects an earlier point: history rows newer than the value's event time left out
    lateness       rows the job dropped as late (more than ALLOWED_LATENESS behind an earlier row of the same
                   Kafka partition) left out
    dedup_horizon  a repeated event_id counted again (the job forgets ids after DEDUP_HORIZON)
    state_ttl      the job's state for the entity expired in an idle gap longer than its state TTL: only rows
                   after the last such gap
    commit_delay   Redis holds events the history has not committed yet (it commits on checkpoints)
    ttl            the Redis key expired (no event for the feature set's ttl)

A column that matches under an alternative is "explained" by that set of causes; a column that matches under
none is a mismatch, which is a bug. Sizes are reported: the absolute and relative difference per column.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from featurespec import FeatureSet
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import COLUMN_INDEX
from featurespec.sql import default_state_ttl
from fyp.lake.history import HistoryEvent, read_history, split_id
from fyp.serving.layout import HEADER_BYTES

__all__ = ["CAUSES", "ColumnCheck", "EntityCheck", "VerifySummary", "check_entity", "summarize", "verify"]

CAUSES: dict[str, str] = {
    "as_of": "Redis reflects an earlier event time than the history's newest row (the job had not caught up)",
    "lateness": "rows more than the allowed lateness behind an earlier row of their Kafka partition were dropped",
    "dedup_horizon": "a repeated event_id arrived after the job's dedup horizon and was counted again",
    "state_ttl": "the job's state for the entity expired during an idle gap longer than the state TTL",
    "commit_delay": "Redis holds events the history has not committed yet (commits follow checkpoints)",
    "ttl": "the Redis key expired: no event for the feature set's ttl",
}
# The causes that are tried as alternative recomputations, in the order they are combined.
_RECOMPUTED_CAUSES = ("as_of", "lateness", "dedup_horizon", "state_ttl")
REL_TOL = 1e-6  # float32 storage and a different summation order (two-phase aggregation) stay far below this
ABS_TOL = 1e-12

_EVENT_ID = COLUMN_INDEX["event_id"]
_EVENT_TIME = COLUMN_INDEX["event_time"]


@dataclass(frozen=True, kw_only=True)
class ColumnCheck:
    """One column: Redis against the baseline recomputation, and the causes that explain a difference."""

    column: str
    redis: float | None
    recomputed: float | None
    abs_diff: float
    rel_diff: float
    match: bool
    explained_by: tuple[str, ...] | None = None  # the smallest set of causes under which the column matches


@dataclass(frozen=True, kw_only=True)
class EntityCheck:
    """status: match (every column), explained (every difference has documented causes), mismatch (a bug),
    missing (no Redis value, unexplained), absent (neither side has the entity)."""

    feature_set: str
    entity: str
    entity_id: str
    status: str
    causes: tuple[str, ...]
    history_rows: int
    redis_event_time_ms: int | None
    history_event_time_ms: int | None
    columns: tuple[ColumnCheck, ...] = ()
    note: str = ""

    @property
    def matched(self) -> int:
        return sum(c.match for c in self.columns)

    @property
    def mismatched(self) -> int:
        return sum(not c.match for c in self.columns)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _decode(value: bytes, width: int) -> tuple[int, np.ndarray]:
    if len(value) != HEADER_BYTES + 4 * width:
        raise ValueError(f"a packed value of {len(value)} bytes does not hold {width} columns")
    return int.from_bytes(value[:8], "little", signed=True), np.frombuffer(value, dtype="<f4", offset=HEADER_BYTES)


def _select(events: Sequence[HistoryEvent], causes: frozenset[str], redis_event_time: int | None,
            state_ttl_ms: int) -> list[HistoryEvent]:
    """The rows the job would have folded if the given causes were at work (the baseline for no causes)."""
    chosen = sorted(events, key=lambda e: e.position)  # keep-first dedup: the first in Kafka order wins
    if "lateness" in causes:
        chosen = [e for e in chosen if not e.late]
    if "dedup_horizon" not in causes:
        seen: set[str] = set()
        unique = []
        for event in chosen:
            if event.row[_EVENT_ID] not in seen:
                seen.add(event.row[_EVENT_ID])
                unique.append(event)
        chosen = unique
    if "as_of" in causes and redis_event_time is not None:
        chosen = [e for e in chosen if e.row[_EVENT_TIME] <= redis_event_time]
    if "state_ttl" in causes and chosen:
        times = sorted(e.row[_EVENT_TIME] for e in chosen)
        restart = max((later for earlier, later in itertools.pairwise(times) if later - earlier > state_ttl_ms),
                      default=None)
        if restart is not None:
            chosen = [e for e in chosen if e.row[_EVENT_TIME] >= restart]
    return chosen


def _applicable(events: Sequence[HistoryEvent], redis_event_time: int | None, state_ttl_ms: int) -> list[str]:
    """The recomputed causes that would change anything for these rows (the others need no trying)."""
    found = []
    times = sorted(e.row[_EVENT_TIME] for e in events)
    if redis_event_time is not None and times and times[-1] > redis_event_time:
        found.append("as_of")
    if any(e.late for e in events):
        found.append("lateness")
    if len({e.row[_EVENT_ID] for e in events}) < len(events):
        found.append("dedup_horizon")
    if any(b - a > state_ttl_ms for a, b in itertools.pairwise(times)):
        found.append("state_ttl")
    return found


def _recompute(evaluator: FeatureEvaluator, key: str, events: Iterable[HistoryEvent]) -> bytes:
    state: array = evaluator.new_state()
    for event in events:
        for row_key in evaluator.keys(event.row):
            if row_key == key:
                evaluator.update(state, event.row)
    return evaluator.pack(state)


def _float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def check_entity(
    evaluator: FeatureEvaluator, entity_id: str, redis_value: bytes | None, events: Sequence[HistoryEvent], *,
    now_ms: int, commit_delay_ms: int = 120_000,
) -> EntityCheck:
    """Compare one entity's Redis value with its recomputation from `events` (its history rows).

    entity_id: key columns joined with ':' (as in the Redis key). events: every history row that may belong
    to the entity (rows of other entities are ignored). now_ms: the time of the check, for the TTL and
    commit-delay explanations; commit_delay_ms: how recent an event may still be uncommitted in the history.
    """
    fs = evaluator.feature_set
    events = [e for e in events if entity_id in evaluator.keys(e.row)]
    history_time = max((e.row[_EVENT_TIME] for e in events), default=None)
    common = {"feature_set": fs.qualified_name, "entity": fs.entity.name, "entity_id": entity_id,
              "history_rows": len(events), "history_event_time_ms": history_time}
    width = len(evaluator.columns)
    if redis_value is None:
        if not events:
            return EntityCheck(status="absent", causes=(), redis_event_time_ms=None, **common)
        if history_time < now_ms - fs.ttl.total_seconds() * 1000:
            return EntityCheck(status="explained", causes=("ttl",), redis_event_time_ms=None, **common)
        if all(e.late for e in events):
            return EntityCheck(status="explained", causes=("lateness",), redis_event_time_ms=None, **common)
        return EntityCheck(status="missing", causes=(), redis_event_time_ms=None,
                           note="Redis has no value for an entity with recent history rows", **common)

    redis_time, redis_columns = _decode(redis_value, width)
    state_ttl_ms = int(default_state_ttl(fs).total_seconds() * 1000)
    names = ("event_time_ms", *evaluator.columns)
    redis_all = np.concatenate(([float(redis_time)], redis_columns.astype(np.float64)))

    def recomputed(causes: frozenset[str]) -> np.ndarray:
        packed = _recompute(evaluator, entity_id, _select(events, causes, redis_time, state_ttl_ms))
        time, columns = _decode(packed, width)
        return np.concatenate(([float(time)], columns.astype(np.float64)))

    base = recomputed(frozenset())
    matches = [_close(r, b) for r, b in zip(redis_all, base, strict=True)]
    explained: dict[int, tuple[str, ...]] = {}
    applicable = _applicable(events, redis_time, state_ttl_ms)
    if not all(matches):
        for size in range(1, len(applicable) + 1):
            for combo in itertools.combinations(applicable, size):
                alternative = recomputed(frozenset(combo))
                for i, (r, a) in enumerate(zip(redis_all, alternative, strict=True)):
                    if not matches[i] and i not in explained and _close(r, a):
                        explained[i] = combo
        # Redis saw events the history has not committed yet: nothing to recompute, but expected for a while.
        if history_time is not None and redis_time > history_time and redis_time >= now_ms - commit_delay_ms:
            for i, ok in enumerate(matches):
                if not ok:
                    explained.setdefault(i, ("commit_delay",))
    columns = tuple(
        ColumnCheck(column=name, redis=_float(r), recomputed=_float(b),
                    abs_diff=0.0 if ok else _diff(r, b), rel_diff=0.0 if ok else _rel(r, b), match=ok,
                    explained_by=None if ok else explained.get(i))
        for i, (name, r, b, ok) in enumerate(zip(names, redis_all, base, matches, strict=True)))
    if not events and redis_time >= now_ms - commit_delay_ms:
        return EntityCheck(status="explained", causes=("commit_delay",), redis_event_time_ms=redis_time,
                           columns=columns, **common)
    if all(matches):
        status, causes = "match", ()
    elif all(c.match or c.explained_by for c in columns):
        status = "explained"
        causes = tuple(sorted({cause for c in columns if c.explained_by for cause in c.explained_by}))
    else:
        status, causes = "mismatch", ()
    return EntityCheck(status=status, causes=causes, redis_event_time_ms=redis_time, columns=columns, **common)


def _diff(a: float, b: float) -> float:
    if math.isnan(a) and math.isnan(b):
        return 0.0
    return abs(a - b) if not (math.isnan(a) or math.isnan(b)) else math.inf


def _rel(a: float, b: float) -> float:
    d = _diff(a, b)
    scale = max(abs(a), abs(b)) if not (math.isnan(a) or math.isnan(b)) else 0.0
    return d / scale if scale > 0 else (0.0 if d == 0 else math.inf)


@dataclass(frozen=True, kw_only=True)
class VerifySummary:
    """A sample's totals: entities by status, causes, and per column matches, explained and mismatched
    entities with the largest differences."""

    feature_set: str
    entities: int
    by_status: dict[str, int]
    by_cause: dict[str, int]
    columns: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.by_status.get("mismatch") and not self.by_status.get("missing")


def summarize(feature_set: FeatureSet, checks: Sequence[EntityCheck]) -> VerifySummary:
    by_status: dict[str, int] = defaultdict(int)
    by_cause: dict[str, int] = defaultdict(int)
    columns: dict[str, dict[str, float]] = {}
    for check in checks:
        by_status[check.status] += 1
        for cause in check.causes:
            by_cause[cause] += 1
        for c in check.columns:
            entry = columns.setdefault(c.column, {"match": 0, "explained": 0, "mismatch": 0, "max_abs_diff": 0.0,
                                                  "max_rel_diff": 0.0})
            entry["match" if c.match else "explained" if c.explained_by else "mismatch"] += 1
            if not c.match:
                entry["max_abs_diff"] = max(entry["max_abs_diff"], c.abs_diff)
                entry["max_rel_diff"] = max(entry["max_rel_diff"], c.rel_diff)
    return VerifySummary(feature_set=feature_set.qualified_name, entities=len(checks), by_status=dict(by_status),
                         by_cause=dict(by_cause), columns=columns)


def verify(
    feature_set: FeatureSet, table, redis_client, ids: Sequence[str], *, now_ms: int,
    commit_delay_ms: int = 120_000,
) -> list[EntityCheck]:
    """Check each id of `ids` against Redis (one MGET) and the history table (one scan)."""
    evaluator = FeatureEvaluator.of(feature_set)
    for entity_id in ids:
        split_id(feature_set, entity_id)
    # A Redis Cluster spreads the keys over hash slots: redis-py's mget_nonatomic sends one MGET per slot and
    # returns the values in the keys' order; a single Redis takes them in one MGET.
    mget = getattr(redis_client, "mget_nonatomic", redis_client.mget)
    values = mget([feature_set.key_prefix + i for i in ids]) if ids else []
    history = read_history(table, feature_set, ids) if ids else {}
    return [check_entity(evaluator, i, v, history[i], now_ms=now_ms, commit_delay_ms=commit_delay_ms)
            for i, v in zip(ids, values, strict=True)]
