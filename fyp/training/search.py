"""The in-flight searches of the skew check's explainer (fyp.training.explain): which of an entity's recent events
a served value lacked, as choices per group of events, matched on plain sums before any full recomputation.

Each search is a list of groups, each a list of options (sets of events): option 0 holds the events every choice
of the group leaves out, and every other option holds it. `combinations` picks one option per group whose extra
events (beyond each option 0) sum to what the served value lacks, fewest events first. Every step is capped
(options per group, partial sums kept, rows expanded at once), so a search may miss an explanation a full one
would find, never invent one: the explainer folds each candidate in full before it names a cause.

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

import numpy as np

__all__ = ["MAX_OVERTAKEN_STATES", "MAX_STATES", "combinations", "overtaken_options", "read_position_options",
           "suffix_options"]

MAX_STATES = 50_000  # partial sums kept while combining partitions
# Partial sums a group's options may expand to at once (rows x options): bounds the memory of one step to
# ~_MAX_EXPANDED x (columns + groups) x 8 bytes. A search cut here can only miss an explanation (the row is then
# reported unexplained), never invent one. Without it a large in-flight bound (many recent events per partition)
# expanded 50,000 sums by ~160 options and one `fyp demo` check grew past 14 GB.
_MAX_EXPANDED = 500_000
_PER_SUM = 16  # choices kept per distinct partial sum
_DECIMALS = 6
# The overtaken search leaves out any of the newest this many events no newer than the served value (2^n subsets,
# pruned by the sums): what overtakes an event is a later event of a subtask ahead of its own, so the events
# overtaken sit just before the served value's event time.
_MAX_OVERTAKEN = 48
# Its partial sums kept per step: with the decayed sums hardly any two are equal, so a hot video's (many events to
# leave out) fill it. On 200 served rows of issue #17's demo at a 1,100 s bound, 50,000 took 529 s and left 3 user
# rows unexplained, 5,000 took 242 s and left 4 (a busy machine, load 6-7; the first run beside another check).
MAX_OVERTAKEN_STATES = 5_000
# The read-position search: per partition, any of this many recent events just before its read position may
# have been overtaken (2^4 choices per read position); a partition's options are capped, fewest events first.
_OVERTAKEN_PER_PARTITION = 4
_MAX_PARTITION_OPTIONS = 4_096


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
                 tolerance: np.ndarray, max_states: int = MAX_STATES) -> Iterator[frozenset[int]]:
    """One option per group whose extra events (beyond each option 0) sum to `need` (within `tolerance`: the
    served value is float32), the fewest events first.

    Group by group, every reachable partial sum is kept (numpy, a row each) with the options chosen so far; a
    partial sum is dropped once no choice of the later groups can bring it within the tolerance of `need` (each
    later group adds at least its smallest and at most its largest extra, column by column)."""
    extras, sizes = [], []
    for group in options:
        base = set(group[0])
        added = [[i for i in option if i not in base] for option in group]
        events = sorted({i for a in added for i in a})
        column = {i: k for k, i in enumerate(events)}
        member = np.zeros((len(group), len(events)))
        for row, a in enumerate(added):
            member[row, [column[i] for i in a]] = 1.0
        values = np.array([value(i) for i in events]).reshape(len(events), len(need))
        extras.append(member @ values)  # row k: the extra events of option k
        sizes.append(np.array([len(a) for a in added]))
    # Per group, the least and the most the groups after it can add, column by column.
    low = [np.zeros(len(need))] * len(extras)
    high = [np.zeros(len(need))] * len(extras)
    for p in range(len(extras) - 2, -1, -1):
        low[p] = low[p + 1] + extras[p + 1].min(axis=0)
        high[p] = high[p + 1] + extras[p + 1].max(axis=0)
    sums = np.zeros((1, len(need)))
    chosen = np.zeros((1, 0), dtype=np.int64)
    count = np.zeros(1, dtype=np.int64)  # extra events chosen so far
    for p, (extra, size) in enumerate(zip(extras, sizes, strict=True)):
        extra, size = extra[:_MAX_EXPANDED], size[:_MAX_EXPANDED]  # its options, fewest extra events first
        k = len(extra)
        if len(sums) * k > _MAX_EXPANDED:
            kept = _fewest_or_nearest(sums, count, need, _MAX_EXPANDED // k)
            sums, chosen, count = sums[kept], chosen[kept], count[kept]
        sums = (sums[:, None, :] + extra[None, :, :]).reshape(-1, len(need))
        chosen = np.concatenate([np.repeat(chosen, k, axis=0), np.tile(np.arange(k), len(chosen))[:, None]], axis=1)
        count = (count[:, None] + size[None, :]).reshape(-1)
        keep = ~np.any((sums + low[p] > need + tolerance) | (sums + high[p] < need - tolerance), axis=1)
        sums, chosen, count = sums[keep], chosen[keep], count[keep]
        # Equal partial sums (rounded): keep the few choices with the fewest events of each; over the cap, those
        # with the fewest events and those nearest `need` (_fewest_or_nearest).
        rounded = np.round(sums, _DECIMALS)
        order = np.lexsort((count, *rounded.T[::-1]))
        rounded, sums, chosen, count = rounded[order], sums[order], chosen[order], count[order]
        new_group = np.r_[True, np.any(rounded[1:] != rounded[:-1], axis=1)] if len(rounded) else np.zeros(0, bool)
        starts = np.maximum.accumulate(np.where(new_group, np.arange(len(rounded)), 0))
        keep = np.flatnonzero((np.arange(len(rounded)) - starts) < _PER_SUM)
        sums, chosen, count = sums[keep], chosen[keep], count[keep]
        if len(sums) > max_states:
            kept = _fewest_or_nearest(sums, count, need, max_states)
            sums, chosen, count = sums[kept], chosen[kept], count[kept]
    found = np.all(np.abs(sums - need) <= tolerance, axis=1)
    for choice in chosen[found][np.argsort(count[found], kind="stable")].tolist():
        yield frozenset(i for group, k in zip(options, choice, strict=True) for i in group[k])


def _fewest_or_nearest(sums: np.ndarray, count: np.ndarray, need: np.ndarray, n: int) -> np.ndarray:
    """Indexes of at most n partial sums to keep: half those with the fewest events (the fewest exclusions are
    tried first), half those nearest `need` (sum of the shortfall per column, each column scaled by its need): a
    value lacking a lagging partition's long suffix is reached through partial sums of many events, which the
    first half alone would cut."""
    fewest = np.argsort(count, kind="stable")[:n // 2]
    shortfall = np.abs(need - sums) / np.maximum(np.abs(need), 1.0)
    rest = np.setdiff1d(np.arange(len(sums)), fewest, assume_unique=True)
    nearest = rest[np.argsort(shortfall[rest].sum(axis=1), kind="stable")[:n - len(fewest)]]
    return np.sort(np.concatenate([fewest, nearest]))
