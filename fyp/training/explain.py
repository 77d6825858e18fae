"""Why a served value differs from the backfill: which of the entity's events it had not seen yet, and why.

The features job reads each Kafka partition in offset order, and deduplicates on event_id before the entity's
state sees the events (jobs/engagement_features.py, the Java `KeepFirst` step keyed by event_id): each event goes
through the deduplication subtask its event_id hashes to, and the entity's keyed operator merges what those
subtasks send. Each subtask passes events on as they arrive, so per partition *and* per subtask (a lane) the state
holds a prefix of the events in offset order; across lanes a later event of a partition can reach Redis before an
earlier one. (Until issue #17 found it, the deduplication was SQL's, which under mini-batch releases each
mini-batch in hash order: a value then lacked events scattered anywhere in the partition's recent past.) So what a
value lacks at serving time is some recent events of the entity, newer ones all. Two documented causes
(fyp.training.skew):

    lateness   the events behind an event newer than the serve in their partition: they arrived after it;
    in_flight  every event newer than the served value's event time, and any older ones, all recent (event time
               within the bound of the serve): read, or about to be, but not yet written to Redis.

`explain` finds the fewest such exclusions under which the recomputation equals every served column. The
in-flight events of a hot video combine in many ways, so candidates are first matched on the served value's
longest-window sums and decayed sums, which are plain sums of each event's aggregation values (docs/AGGREGATES.md),
by a 0-1 integer program (fyp.training.search.combinations); only those are folded with the reference evaluator
and compared in full. Three searches (fyp.training.search), each only where
the ones before it find nothing: per lane a suffix of its events (exact when the caller names the job's
parallelism, `lane_of`; per partition otherwise); any subset of the newest recent events no newer than the served
value (overtaken: what per-partition lanes leave, and client clocks); and both at once, per lane a suffix and any
of a few recent events just before it. "Recent" is per partition when the caller gives per-partition bounds: the
job trails some partitions more.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from featurespec import FeatureSet, window_label
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import COLUMN_INDEX, compile_value
from featurespec.sql import default_state_ttl
from fyp.serving.layout import ReadPlan, decode_rows_at, read_columns
from fyp.traffic.keygroups import key_subtask
from fyp.training.history import History
from fyp.training.search import (
    SearchOutcome,
    combinations,
    overtaken_options,
    read_position_options,
    suffix_options,
)

__all__ = ["Explanation", "Prefixes", "dedup_lanes", "explain"]

_EVENT_ID = COLUMN_INDEX["event_id"]
_MAX_FOLDS = 64  # full recomputations tried per differing value and search, fewest exclusions first


@dataclass(frozen=True, kw_only=True)
class Explanation:
    cause: str  # "lateness", "in_flight" or "in_flight+lateness"
    in_flight_gap_ms: int | None  # served_time minus the oldest in-flight event's time


class Prefixes:
    """Per entity, its state over its rows before a time, folded once and carried forward: serves of one entity,
    visited in time order, each fold only the rows since the previous one."""

    def __init__(self, feature_set: FeatureSet, history: History) -> None:
        self._evaluator = FeatureEvaluator.of(feature_set)
        self._history = history
        self._state_ttl_ms = int(default_state_ttl(feature_set).total_seconds() * 1000)
        self._rows: dict[str, list[int]] = {}
        self._folded: dict[str, tuple[int, array, int | None]] = {}  # rows folded, state, last event time

    def before(self, key: str, indexes: Sequence[int], cutoff: int) -> tuple[array, int | None, frozenset[int]]:
        """(state, its last event time, the rows in it): the entity's rows `indexes` with event_time < cutoff."""
        times = self._history.event_times
        rows = self._rows.setdefault(key, sorted(indexes, key=lambda i: times[i]))
        n, state, last = self._folded.get(key, (0, self._evaluator.new_state(), None))
        if n and times[rows[n - 1]] >= cutoff:  # the cutoff is behind the last fold: start again
            n, state, last = 0, self._evaluator.new_state(), None
        state = array("d", state)
        while n < len(rows) and times[rows[n]] < cutoff:
            i = rows[n]
            if last is not None and times[i] - last > self._state_ttl_ms:
                state = self._evaluator.new_state()
            self._evaluator.update(state, self._history.rows[i])
            last, n = int(times[i]), n + 1
        self._folded[key] = (n, state, last)
        return array("d", state), last, frozenset(rows[:n])


def dedup_lanes(history: History, subtasks: int, max_parallelism: int) -> Callable[[int], int]:
    """`lane_of` for `explain`: the subtask of the features job's deduplication (keyed by event_id, `subtasks` of
    them, `max_parallelism` key groups) that history row i went through (fyp.traffic.keygroups)."""
    cache: dict[int, int] = {}

    def lane_of(i: int) -> int:
        if i not in cache:
            cache[i] = key_subtask(str(history.rows[i][_EVENT_ID] or ""), subtasks, max_parallelism)
        return cache[i]
    return lane_of


def explain(feature_set: FeatureSet, history: History, indexes: Sequence[int], key: str, served_ms: int,
            served_event_ms: int, arrived_after: Callable[[int], bool], bound_ms: int,
            served: dict[str, float | None], same: Callable[[float | None, float | None], bool],
            prefixes: Prefixes | None = None, partition_bounds_ms: Mapping[int, int] | None = None,
            lane_of: Callable[[int], int] | None = None, outcome: SearchOutcome | None = None) -> Explanation | None:
    """The explanation under which `key`'s recomputation from its admitted history rows `indexes` equals every
    served column (`served`, by column name), or None.

    arrived_after(i): whether row i sits in its partition after an event newer than the serve.
    same: the column comparison (fyp.training.skew.same).
    prefixes: states of the entity's older rows, shared by the calls of one check (fewer folds).
    bound_ms: how far behind the serve an in-flight event may be; partition_bounds_ms: the same per Kafka
        partition, each capped at bound_ms (a partition not named: bound_ms).
    lane_of(i): which subtask of the job's deduplication row i went through (`dedup_lanes`): the job applies each
        partition's events in offset order per such subtask, so the searches take a suffix per (partition,
        subtask) instead of per partition. None: per partition only.
    outcome: where the searches note that one stopped at its time limit (fyp.training.search.SearchOutcome)."""
    times = history.event_times

    def bound_of(partition: int) -> int:
        return min(bound_ms, (partition_bounds_ms or {}).get(partition, bound_ms))

    before = sorted((i for i in indexes if times[i] < served_ms),
                    key=lambda i: (history.partitions[i], history.offsets[i]))
    late = frozenset(i for i in before if arrived_after(i))
    evaluator = FeatureEvaluator.of(feature_set)
    plan = ReadPlan.of(feature_set)
    names = read_columns(plan)
    longest = max(feature_set.windows, default=None)
    sums = [(f"{a.name}_{window_label(longest)}", compile_value(a.value_sql())) for a in feature_set.aggregations
            ] if longest else []
    # The decayed sums, as of the served value's event time, are plain sums too: each event's value times
    # 2^-(served event time - its time) / half-life. Every search matches them as well, to tell apart candidates
    # that the window sums cannot (which of a user's impressions is missing, which lanes of a hot video lack how
    # many): the first candidate is then nearly always the one, and few full folds are spent.
    decays = [(f"{a.name}_decay_{window_label(h)}", compile_value(a.value_sql()), h.total_seconds() * 1000)
              for a in feature_set.aggregations for h in feature_set.half_lives] if served_event_ms else []
    state_ttl_ms = int(default_state_ttl(feature_set).total_seconds() * 1000)
    ttl_ms = int(feature_set.ttl.total_seconds() * 1000)

    def fold(excluded: frozenset[int], base: tuple | None = None) -> tuple[dict[str, float], np.ndarray, int]:
        """Decoded columns, raw results and newest event time of the rows not `excluded`; from `base` (a state,
        its last event time and the rows it holds) when given, adding the rest (the aggregates do not depend on
        the order rows are added in)."""
        state, last, held = (evaluator.new_state(), None, frozenset()) if base is None else (
            array("d", base[0]), base[1], base[2])
        for i in sorted((i for i in before if i not in excluded and i not in held), key=lambda i: times[i]):
            if last is not None and times[i] - last > state_ttl_ms:
                state = evaluator.new_state()
            evaluator.update(state, history.rows[i])
            last = max(last or 0, int(times[i]))
        newest = evaluator.event_time(state)
        results = np.array([np.nan if v is None else v for v in evaluator.results(state)])
        packed = [evaluator.pack(state) if newest and served_ms - newest < ttl_ms else None]
        values, _ = decode_rows_at(plan, packed, np.array([served_ms]))
        return dict(zip(names, values[0].tolist(), strict=True)), results, newest

    # Rows older than any in-flight candidate, none of them late: the same in every recomputation.
    cutoff = served_ms - bound_ms
    old = (prefixes or Prefixes(feature_set, history)).before(key, indexes, cutoff)
    if late & old[2]:
        old = (evaluator.new_state(), None, frozenset())

    def based(held: frozenset[int]) -> tuple:
        """A state of the rows in `held` (those every candidate keeps), to start each candidate from."""
        state, last = array("d", old[0]), old[1]
        for i in sorted(held - old[2], key=lambda i: times[i]):
            if last is not None and times[i] - last > state_ttl_ms:
                state = evaluator.new_state()
            evaluator.update(state, history.rows[i])
            last = int(times[i])
        return state, last, held

    def matches(excluded: frozenset[int], base: tuple | None = None) -> bool:
        recomputed, _, newest = fold(excluded, base)
        if served_event_ms and newest != served_event_ms:
            return False  # the served value's header is the newest event it holds
        return all(same(value, recomputed[column]) for column, value in served.items())

    value_cache: dict[int, np.ndarray] = {}

    def value(i: int) -> np.ndarray:
        """Event i's share of the window sums, then of the decayed sums as of the served value's event time."""
        if i not in value_cache:
            row = history.rows[i]
            weight = [2.0 ** (-(served_event_ms - int(times[i])) / h) for _, _, h in decays]
            value_cache[i] = np.array([float(v) if (v := f(row)) is not None and np.isfinite(v) else 0.0
                                       for _, f in sums] + [
                w * float(v) if (v := f(row)) is not None and np.isfinite(v) else 0.0
                for (_, f, _), w in zip(decays, weight, strict=True)])
        return value_cache[i]

    if late and matches(late, based(frozenset(before) - late)):
        return Explanation(cause="lateness", in_flight_gap_ms=None)
    column_of = {c: k for k, c in enumerate(plan.columns)}
    targets = [served.get(name) for name, _ in sums]
    # The served decayed values were decoded at served_ms: as of the served value's event time, undo that decay.
    age = max(0, served_ms - served_event_ms)
    decay_targets = [None if (v := served.get(name)) is None else v / 2.0 ** (-age / h) for name, _, h in decays]

    def attempt(groups: Callable[[np.ndarray, Callable[[int], np.ndarray]], list | None], mandatory: frozenset[int],
                uncertain: frozenset[int], arrived_late: frozenset[int]) -> Explanation | None:
        """Folds, fewest events first, the candidates of one search: `groups(limit, value)` gives its options
        (fyp.training.search), where no option may add more than `limit` in a column that only grows;
        `mandatory`: the events every candidate leaves out; `uncertain`: those any may."""
        base = based(frozenset(before) - arrived_late - uncertain)
        _, results, newest = fold(arrived_late | mandatory, base)
        if sums and all(t is not None for t in targets):
            names_now, goal = [name for name, _ in sums], list(targets)
            if decays and newest == served_event_ms and all(t is not None for t in decay_targets):
                names_now += [name for name, _, _ in decays]
                goal += decay_targets
            width = len(names_now)
            full = np.nan_to_num(np.array([results[column_of[name]] for name in names_now]))
            need = full - np.array(goal, dtype=float)
            tolerance = 1e-6 * np.maximum(np.abs(full), 1.0)
            grows = np.all([value(i)[:width] >= 0 for i in uncertain], axis=0) if uncertain else np.ones(width, bool)
            options = groups(np.where(grows, need + tolerance, np.inf), lambda i: value(i)[:width])
            if options is None:
                return None
            candidates = combinations(options, lambda i: value(i)[:width], need, tolerance, _MAX_FOLDS, outcome)
        else:
            candidates = iter([mandatory])
        tried = 0
        for in_flight in candidates:
            if not in_flight or tried >= _MAX_FOLDS:
                continue
            tried += 1
            if matches(arrived_late | in_flight, base):
                return Explanation(cause="in_flight+lateness" if arrived_late else "in_flight",
                                   in_flight_gap_ms=served_ms - min(int(times[i]) for i in in_flight))
        return None

    for arrived_late in ((frozenset(), late) if late else (frozenset(),)):
        kept = [i for i in before if i not in arrived_late]
        partitions: dict[tuple[int, int], list[int]] = {}  # per lane: (partition, dedup subtask)
        for i in kept:
            partitions.setdefault((int(history.partitions[i]), lane_of(i) if lane_of else 0), []).append(i)
        recent = frozenset(i for i in kept if times[i] >= served_ms - bound_of(int(history.partitions[i])))
        suffixes = [suffix_options(events, times, served_event_ms, recent) for events in partitions.values()]
        overtaken = overtaken_options(kept, times, served_event_ms, recent)
        # First per partition, a suffix each (the job read the partition up to a point); then, where that finds
        # nothing, any recent events (the deduplication let later events of a partition overtake them); then
        # both: per partition a suffix and a few recent events just before it.
        if None not in suffixes:
            found = attempt(lambda limit, v, options=suffixes: options, frozenset(i for o in suffixes for i in o[0]),
                            frozenset(i for o in suffixes for i in o[-1]), arrived_late)
            if found:
                return found
        if overtaken is not None:
            found = attempt(lambda limit, v, options=overtaken: options, frozenset(overtaken[0][0]),
                            frozenset(i for o in overtaken for i in o[-1]), arrived_late)
            if found:
                return found
        if None not in suffixes and sums:
            def read_positions(limit: np.ndarray, v: Callable[[int], np.ndarray], recent: frozenset[int] = recent,
                               partitions: dict[tuple[int, int], list[int]] = partitions) -> list | None:
                options = [read_position_options(events, times, served_event_ms, recent, v, limit)
                           for events in partitions.values()]
                return None if None in options else options

            found = attempt(read_positions, frozenset(i for o in suffixes for i in o[0]), recent, arrived_late)
            if found:
                return found
    return None
