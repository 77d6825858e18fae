"""The in-flight searches of the skew check's explainer (fyp.training.explain): which of an entity's recent events
a served value lacked, as choices per group of events, matched on plain sums before any full recomputation.

Each search is a list of groups, each a list of options (sets of events): option 0 holds the events every choice
of the group leaves out, and every other option holds it. `combinations` picks one option per group whose extra
events (beyond each option 0) sum to what the served value lacks, fewest events first: a 0-1 integer program
(one variable per option, one option per group, the sums equal within a tolerance, the fewest events), solved by
HiGHS through scipy.optimize.milp, each next candidate excluded from the solves after it. The options per group
and each solve's time are capped, so a search may miss an explanation a full one would find, never invent one:
the explainer folds each candidate in full before it names a cause. (Until 2026-12-07 `combinations` was a
breadth-first walk over partial sums, capped at 50,000 of them: a hot video's value lacking events in twelve
lanes outgrew it, and one such row was explained only with ten times the cap, docs/TRAINING.md.)

Three ways to build the groups, tried in this order by the explainer:

    suffix_options          per partition, a suffix (the job had read the partition up to a point);
    overtaken_options       any of the _MAX_OVERTAKEN newest recent events no newer than the served value (the
                            job's deduplication lets a later event of a partition reach the state first);
    read_position_options   both at once: per partition a suffix, and any of the _OVERTAKEN_PER_PARTITION recent
                            events just before it (a hot video lacks a lagging partition's suffix and overtaken
                            events of other partitions, which neither search above finds: issue #17).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = ["SearchOutcome", "combinations", "overtaken_options", "read_position_options", "suffix_options"]

# Each candidate of a search is one solve; the explainer folds at most its own cap of them (_MAX_FOLDS), and a
# solve that finds nothing within this many seconds ends the search (a hot video's infeasible program is the slow
# case: no candidate is the answer there anyway).
_SOLVE_S = 5.0
# The overtaken search leaves out any of the newest this many events no newer than the served value (2^n subsets,
# one binary choice each): what overtakes an event is a later event of a subtask ahead of its own, so the events
# overtaken sit just before the served value's event time.
_MAX_OVERTAKEN = 48
# The read-position search: per partition, any of this many recent events just before its read position may
# have been overtaken (2^4 choices per read position); a partition's options are capped, fewest events first.
_OVERTAKEN_PER_PARTITION = 4
_MAX_PARTITION_OPTIONS = 4_096


@dataclass
class SearchOutcome:
    """What the searches for one served value ran into. at_time_limit: some solve stopped at _SOLVE_S with no
    candidate, so that finding none there means the search gave up, not that no candidate exists (a program
    HiGHS proves infeasible is the other way to find none). On a hot video's value lacking events in twelve lanes,
    HiGHS found no planted solution within 5 s, nor within 60 s (docs/TRAINING.md)."""

    at_time_limit: bool = False


def suffix_options(events: list[int], times: np.ndarray, served_event_ms: int,
                   recent: Collection[int]) -> list[list[int]] | None:
    """One partition's in-flight options (its events in offset order), shortest first: each a suffix holding every
    event newer than the served value's event time, made only of `recent` events. None when none qualifies."""
    newer = [k for k, i in enumerate(events) if times[i] > served_event_ms]
    start = newer[0] if newer else len(events)
    if any(i not in recent for i in events[start:]):
        return None
    options = [events[start:]]
    for k in range(start - 1, -1, -1):
        if events[k] not in recent:
            break
        options.append(events[k:])
    return options


def overtaken_options(events: list[int], times: np.ndarray, served_event_ms: int,
                      recent: Collection[int]) -> list[list[list[int]]] | None:
    """The in-flight choices when events may be missing in any order: one group holding every event newer than
    the served value's event time, all recent; then, for each of the _MAX_OVERTAKEN newest recent events no newer
    than it, a choice of leaving it out or not (2^n subsets: older ones stay in, so the search can miss an
    explanation, never invent one). None when an event newer than the served value is not recent."""
    newer = [i for i in events if times[i] > served_event_ms]
    if any(i not in recent for i in newer):
        return None
    older = sorted((i for i in events if i in recent and times[i] <= served_event_ms), key=lambda i: -times[i])
    if not older:
        return None
    return [[newer], *([[], [i]] for i in older[:_MAX_OVERTAKEN])]


def read_position_options(events: list[int], times: np.ndarray, served_event_ms: int, recent: Collection[int],
                          value: Callable[[int], np.ndarray], limit: np.ndarray) -> list[list[int]] | None:
    """One partition's options (its events in offset order) when the job had read it up to a point and some of
    the events just before that point were overtaken: every event from the read position on (holding every event
    newer than the served value's event time), and any of the _OVERTAKEN_PER_PARTITION recent events just before
    it. An option whose events beyond the shortest one sum above `limit` in some column (what the served value
    lacks, where no event's value is negative: the sums only grow) is left out. Fewest events first, at most
    _MAX_PARTITION_OPTIONS. None when no suffix qualifies."""
    suffixes = suffix_options(events, times, served_event_ms, recent)
    if suffixes is None:
        return None
    found: dict[tuple[int, frozenset[int]], int] = {}  # (read position, events left out before it): size
    extra = np.zeros(len(limit))
    for suffix in suffixes:
        if len(suffix) > len(suffixes[0]):
            extra = extra + value(suffix[0])  # the event this suffix adds to the one before
        if np.any(extra > limit):
            break  # and longer suffixes hold it
        k = len(events) - len(suffix)
        window = [j for j in range(max(0, k - _OVERTAKEN_PER_PARTITION), k) if events[j] in recent]
        for n in range(len(window) + 1):
            for left_out in itertools.combinations(window, n):
                if n and np.any(extra + sum(value(events[j]) for j in left_out) > limit):
                    continue
                # One key per set of events: a left-out event just before the read position moves it back.
                start, rest = k, set(left_out)
                while start - 1 in rest:
                    start -= 1
                    rest.remove(start)
                found.setdefault((start, frozenset(rest)), len(events) - start + len(rest))
    if not found:  # the served value holds more than the events before the shortest suffix: not this way
        return None
    chosen = sorted(found, key=lambda key: (found[key], -key[0]))[:_MAX_PARTITION_OPTIONS]
    return [[events[j] for j in sorted(rest)] + events[start:] for start, rest in chosen]


def combinations(options: list[list[list[int]]], value: Callable[[int], np.ndarray], need: np.ndarray,
                 tolerance: np.ndarray, max_candidates: int = 64,
                 outcome: SearchOutcome | None = None) -> Iterator[frozenset[int]]:
    """One option per group whose extra events (beyond each option 0) sum to `need` (within `tolerance`: the served
    value is float32), the fewest events first, at most `max_candidates` of them, each a different choice.

    The 0-1 program: x[o] = 1 when option o is chosen; per group, the x of its options sum to 1; per column,
    need - tolerance <= sum of x[o] * extra[o] <= need + tolerance; minimise the events chosen. After each
    candidate a cut (its chosen options may not all be chosen again) makes the next solve find another. A solve that
    stops at its time limit with no candidate ends the search and is noted in `outcome`."""
    if not options:
        return
    width = len(need)
    extras, sizes, group_of = [], [], []
    for g, group in enumerate(options):
        base = set(group[0])
        added = [[i for i in option if i not in base] for option in group]
        events = sorted({i for a in added for i in a})
        column = {i: k for k, i in enumerate(events)}
        member = np.zeros((len(group), len(events)))
        for row, a in enumerate(added):
            member[row, [column[i] for i in a]] = 1.0
        values = np.array([value(i) for i in events]).reshape(len(events), width)
        extras.append(member @ values)
        sizes += [len(a) for a in added]
        group_of += [g] * len(group)
    flat = [option for group in options for option in group]  # x[o] is flat[o]
    extra = np.concatenate(extras)  # (options, columns)
    n, groups = len(extra), len(options)
    # Each column scaled to order 1 (watch milliseconds beside counts and decayed fractions) for the solver.
    scale = 1.0 / np.maximum(np.maximum(np.abs(need), np.abs(extra).max(axis=0)), 1.0)
    one_each = sparse.csr_array((np.ones(n), (group_of, np.arange(n))), shape=(groups, n))
    constraints = [LinearConstraint(one_each, 1, 1),
                   LinearConstraint(extra.T * scale[:, None], (need - tolerance) * scale, (need + tolerance) * scale)]
    given: list[np.ndarray] = []  # the options of each candidate given: never all chosen again
    for _ in range(max_candidates):
        cuts = [LinearConstraint(sparse.csr_array((np.ones(groups * len(given)), (
            np.repeat(np.arange(len(given)), groups), np.concatenate(given))), shape=(len(given), n)),
            -np.inf, groups - 1)] if given else []
        found = milp(np.asarray(sizes, float), integrality=np.ones(n), bounds=Bounds(0, 1),
                     constraints=[*constraints, *cuts], options={"time_limit": _SOLVE_S})
        if found.x is None or found.status not in (0, 1):  # 1: the time limit, with a solution in hand
            if found.status == 1 and outcome is not None:
                outcome.at_time_limit = True
            return
        chosen = np.flatnonzero(found.x > 0.5)
        if len(chosen) != groups:
            return
        given.append(chosen)
        yield frozenset(i for o in chosen.tolist() for i in flat[o])
