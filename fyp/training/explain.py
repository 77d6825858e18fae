"""Why a served value differs from the backfill: which of the entity's events it had not seen yet, and why.

The features job reads each Kafka partition in offset order, but the entity's state does not see a partition's
events in that order: the job deduplicates on event_id first (jobs/engagement_features.py, ROW_NUMBER() OVER
(PARTITION BY event_id)), which sends each event to the dedup subtask its event_id hashes to, and the entity's
keyed operator merges what the dedup subtasks emit, each a mini-batch at a time and within one in no set order.
With more than one dedup subtask, a later event of a partition can reach Redis before an earlier one: `fyp demo`
(parallelism 2) served a user's value that held the user's events up to 05:47:53.904 (event time) but not an
impression of 05:47:14.567 nor a watch of 05:47:48.369, all of one partition: 39 s of event time, 2 s of wall
clock at the demo's speed 20. So what a value lacks at serving time is
some recent events of the entity, newer ones all. Two documented causes (fyp.training.skew):

    lateness   the events behind an event newer than the serve in their partition: they arrived after it;
    in_flight  every event newer than the served value's event time, and any older ones, all recent (event time
               within the bound of the serve): read, or about to be, but not yet written to Redis.

`explain` finds the fewest such exclusions under which the recomputation equals every served column. The
in-flight events of a hot video combine in many ways, so candidates are first matched on the served value's
longest-window sums, which are plain sums of each event's aggregation values (docs/AGGREGATES.md); only those are
folded with the reference evaluator and compared in full. Two searches, the second only where the first finds
nothing: per partition a suffix of its events (the job had read the partition up to a point: few choices, as
before the deduplication's reordering was known), then any subset of the _MAX_OVERTAKEN newest recent events no
newer than the served value.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from featurespec import FeatureSet, window_label
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import compile_value
from featurespec.sql import default_state_ttl
from fyp.serving.layout import ReadPlan, decode_rows_at, read_columns
from fyp.training.history import History

__all__ = ["Explanation", "Prefixes", "explain"]

_MAX_FOLDS = 64  # full recomputations tried per differing value, fewest exclusions first
_MAX_STATES = 50_000  # partial sums kept while combining partitions
# Partial sums a partition's options may expand to at once (rows x options): bounds the memory of one step to
# ~_MAX_EXPANDED x (columns + partitions) x 8 bytes. A search cut here can only miss an explanation (the row is then
# reported unexplained), never invent one. Without it a large in-flight bound (many recent events per partition)
# expanded 50,000 sums by ~160 options and one `fyp demo` check grew past 14 GB.
_MAX_EXPANDED = 500_000
_PER_SUM = 16  # choices kept per distinct partial sum
_DECIMALS = 6
# The second search leaves out any of the newest this many events no newer than the served value (2^n subsets,
# pruned by the sums): what overtakes an event is a later event of a subtask ahead of its own, so the events
# overtaken sit just before the served value's event time.
_MAX_OVERTAKEN = 48
# Its partial sums kept per step: with the decayed sums hardly any two are equal, so a hot video's (many events to
# leave out) fill it. On 200 served rows of issue #17's demo at a 1,100 s bound, 50,000 took 529 s and left 3 user
# rows unexplained, 5,000 took 242 s and left 4 (a busy machine, load 6-7; the first run beside another check).
_MAX_OVERTAKEN_STATES = 5_000


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


def _suffix_options(events: list[int], times: np.ndarray, served_event_ms: int,
                    recent_from: int) -> list[list[int]] | None:
    """One partition's in-flight options (its events in offset order), shortest first: each a suffix holding every
    event newer than the served value's event time, made only of recent events. None when none qualifies."""
    newer = [k for k, i in enumerate(events) if times[i] > served_event_ms]
    start = newer[0] if newer else len(events)
    if any(times[i] < recent_from for i in events[start:]):
        return None
    options = [events[start:]]
    for k in range(start - 1, -1, -1):
        if times[events[k]] < recent_from:
            break
        options.append(events[k:])
    return options


def _overtaken_options(events: list[int], times: np.ndarray, served_event_ms: int,
                       recent_from: int) -> list[list[list[int]]] | None:
    """The in-flight choices when events may be missing in any order (module docstring): one choice holding every
    event newer than the served value's event time, all recent; then, for each of the _MAX_OVERTAKEN newest recent
    events no newer than it, a choice of leaving it out or not (2^n subsets: older ones stay in, so the search can
    miss an explanation, never invent one). None when an event newer than the served value is not recent."""
    newer = [i for i in events if times[i] > served_event_ms]
    if any(times[i] < recent_from for i in newer):
        return None
    older = sorted((i for i in events if recent_from <= times[i] <= served_event_ms), key=lambda i: -times[i])
    if not older:
        return None
    return [[newer], *([[], [i]] for i in older[:_MAX_OVERTAKEN])]


def _combinations(options: list[list[list[int]]], value: Callable[[int], np.ndarray], need: np.ndarray,
                  tolerance: np.ndarray, max_states: int = _MAX_STATES) -> Iterator[frozenset[int]]:
    """One option per partition whose extra events (beyond each shortest option) sum to `need` on the longest-window
    columns (within `tolerance`: the served value is float32), the fewest events first.

    Partition by partition, every reachable partial sum is kept (numpy, a row each) with the options chosen so far;
    a partial sum already above `need` in a column no later partition can lower is dropped."""
    extras = []
    for partition in options:
        steps = [np.zeros(len(need))] + [value(option[0]) for option in partition[1:]]
        extras.append(np.cumsum(steps, axis=0))  # row k: the k extra events of option k
    # Per partition, whether the partitions after it only add (then an overshoot there is final); one pass from the
    # end, as there may be a choice per event (_overtaken_options).
    only_add = [np.ones(len(need), bool)] * len(extras)
    for p in range(len(extras) - 2, -1, -1):
        only_add[p] = only_add[p + 1] & np.all(extras[p + 1] >= 0, axis=0)
    sums = np.zeros((1, len(need)))
    chosen = np.zeros((1, 0), dtype=np.int64)
    for p, extra in enumerate(extras):
        extra = extra[:_MAX_EXPANDED]  # its options, fewest extra events first
        k = len(extra)
        if len(sums) * k > _MAX_EXPANDED:  # keep the partial sums with the fewest events so far
            fewest = np.argsort(chosen.sum(axis=1), kind="stable")[:_MAX_EXPANDED // k]
            sums, chosen = sums[fewest], chosen[fewest]
        sums = (sums[:, None, :] + extra[None, :, :]).reshape(-1, len(need))
        chosen = np.concatenate([np.repeat(chosen, k, axis=0), np.tile(np.arange(k), len(chosen))[:, None]], axis=1)
        keep = ~np.any((sums > need + tolerance) & only_add[p], axis=1)
        sums, chosen = sums[keep], chosen[keep]
        # Equal partial sums (rounded): keep the few choices with the fewest events of each.
        rounded = np.round(sums, _DECIMALS)
        order = np.lexsort((chosen.sum(axis=1), *rounded.T[::-1]))
        rounded, sums, chosen = rounded[order], sums[order], chosen[order]
        new_group = np.r_[True, np.any(rounded[1:] != rounded[:-1], axis=1)] if len(rounded) else np.zeros(0, bool)
        starts = np.maximum.accumulate(np.where(new_group, np.arange(len(rounded)), 0))
        keep = (np.arange(len(rounded)) - starts) < _PER_SUM
        sums, chosen = sums[keep][:max_states], chosen[keep][:max_states]
    found = chosen[np.all(np.abs(sums - need) <= tolerance, axis=1)]
    for choice in found[np.argsort(found.sum(axis=1), kind="stable")].tolist():
        yield frozenset(i for partition, k in zip(options, choice, strict=True) for i in partition[k])


def explain(feature_set: FeatureSet, history: History, indexes: Sequence[int], key: str, served_ms: int,
            served_event_ms: int, arrived_after: Callable[[int], bool], bound_ms: int,
            served: dict[str, float | None], same: Callable[[float | None, float | None], bool],
            prefixes: Prefixes | None = None) -> Explanation | None:
    """The explanation under which `key`'s recomputation from its admitted history rows `indexes` equals every
    served column (`served`, by column name), or None.

    arrived_after(i): whether row i sits in its partition after an event newer than the serve.
    same: the column comparison (fyp.training.skew.same).
    prefixes: states of the entity's older rows, shared by the calls of one check (fewer folds)."""
    times = history.event_times
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
    # 2^-(served event time - its time) / half-life. The overtaken-events search matches them as well, to tell
    # apart candidates that the window sums cannot (which of a user's impressions is missing); not the suffix
    # search, whose few choices per partition the window sums tell apart, and whose partial sums would then all
    # differ and hit _MAX_STATES.
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
    for arrived_late in ((frozenset(), late) if late else (frozenset(),)):
        partitions: dict[int, list[int]] = {}
        for i in before:
            if i not in arrived_late:
                partitions.setdefault(int(history.partitions[i]), []).append(i)
        suffixes = [_suffix_options(events, times, served_event_ms, served_ms - bound_ms)
                    for events in partitions.values()]
        # First per partition, a suffix each (the job read the partition up to a point); then, where that finds
        # nothing, any recent events (the deduplication let later events of a partition overtake them).
        searches = [(None if None in suffixes else suffixes, False),
                    (_overtaken_options([i for i in before if i not in arrived_late], times, served_event_ms,
                                        served_ms - bound_ms), True)]
        for options, by_decay in searches:
            if options is None:
                continue
            shortest = frozenset(i for o in options for i in o[0])
            uncertain = frozenset(i for o in options for i in o[-1])
            base = based(frozenset(before) - arrived_late - uncertain)
            _, results, newest = fold(arrived_late | shortest, base)
            if sums and all(t is not None for t in targets):
                names_now, goal = [name for name, _ in sums], list(targets)
                if by_decay and decays and newest == served_event_ms and all(t is not None for t in decay_targets):
                    names_now += [name for name, _, _ in decays]
                    goal += decay_targets
                width = len(names_now)
                full = np.nan_to_num(np.array([results[column_of[name]] for name in names_now]))
                need = full - np.array(goal, dtype=float)
                candidates = _combinations(options, lambda i, width=width: value(i)[:width], need,
                                           1e-6 * np.maximum(np.abs(full), 1.0),
                                           _MAX_OVERTAKEN_STATES if by_decay else _MAX_STATES)
            else:
                candidates = iter([shortest])
            tried = 0
            for in_flight in candidates:
                if not in_flight or tried >= _MAX_FOLDS:
                    continue
                tried += 1
                if matches(arrived_late | in_flight, base):
                    cause = "in_flight+lateness" if arrived_late else "in_flight"
                    return Explanation(cause=cause,
                                       in_flight_gap_ms=served_ms - min(int(times[i]) for i in in_flight))
    return None

