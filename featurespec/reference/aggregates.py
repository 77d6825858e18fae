"""SLIDING_SUM and DECAYED_SUM in plain Python, with the semantics of the Java aggregates the Flink job runs
(udfs/java/aggregates: dev.fyp.flink.aggregates.SlidingSum, DecayedSum); the Javadoc there is the spec.

An accumulator is a slice of a flat `array('d')`, so that an entity's whole state (every column of a feature
set) is one array: a peer keeps it in a dict, or stores its bytes in a framework's key-value state with one
memcpy each way. Tile indexes and event times are held as float64 (exact below 2**53 ms); -inf marks "empty"
where Java uses null or Long.MIN_VALUE.

Each aggregator has the tiny contract `initialize`, `add`, `merge`, `result`, all taking `(state, offset)`,
and a `state_suffix` naming its parameters, so state written under other parameters is never read back.

>>> from array import array
>>> plays_1m = SlidingSum(window_ms=60_000, tiles=12)
>>> state = array("d", bytes(8 * plays_1m.width))
>>> plays_1m.initialize(state, 0)
>>> for t in (1_000, 2_000, 70_000):
...     plays_1m.add(state, 0, 1.0, t)
>>> plays_1m.result(state, 0)  # the event at 1 s and 2 s fell out of the minute before 70 s
1.0
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

__all__ = ["EMPTY", "DecayedSum", "SlidingSum"]

EMPTY = -math.inf  # an accumulator that accepted nothing yet, or a never-used tile slot


@dataclass(frozen=True, kw_only=True)
class SlidingSum:
    """Sum of the values of the last `window_ms` of event time, kept as a ring of `tiles` buckets.

    window_ms: window length, milliseconds (a positive multiple of `tiles`).
    tiles: buckets per window; the window slides by window_ms / tiles.

    Value as of `ref`, the maximum event time accepted: the buckets with index in (floor(ref / tile) - tiles,
    floor(ref / tile)]. Older events are dropped; a late event still inside the window goes to its own tile.
    State at `offset`: ref tile, then the tile index held by each slot, then each slot's sum.
    """

    window_ms: int
    tiles: int
    tile_ms: int = field(init=False, repr=False)  # window_ms // tiles, precomputed for `add`

    def __post_init__(self) -> None:
        if self.window_ms <= 0 or self.tiles <= 0 or self.window_ms % self.tiles:
            raise ValueError(f"window_ms and tiles must be positive, window_ms a multiple of tiles; got "
                             f"window_ms={self.window_ms}, tiles={self.tiles}")
        object.__setattr__(self, "tile_ms", self.window_ms // self.tiles)

    @property
    def width(self) -> int:
        """float64 slots of one accumulator."""
        return 1 + 2 * self.tiles

    @property
    def state_suffix(self) -> str:
        return f"sliding_sum_{self.window_ms}ms_{self.tiles}t"

    def initialize(self, state: array, offset: int) -> None:
        n = self.tiles
        state[offset: offset + 1 + n] = array("d", [EMPTY] * (1 + n))
        state[offset + 1 + n: offset + 1 + 2 * n] = array("d", bytes(8 * n))

    def add(self, state: array, offset: int, value: float, event_time_ms: int) -> None:
        """Add `value` (finite; callers drop None and non-finite values, as Java does) at `event_time_ms`."""
        n = self.tiles
        i = event_time_ms // self.tile_ms
        ref = state[offset]
        if i > ref:  # also the first event: ref is -inf
            state[offset] = i
        elif i <= ref - n:
            return  # older than the window's oldest tile: it cannot affect the value
        slot = offset + 1 + i % n
        if state[slot] == i:
            state[slot + n] += value
        else:  # a stale tile or a never-used slot
            state[slot] = i
            state[slot + n] = value

    def merge(self, state: array, offset: int, other: array, other_offset: int) -> None:
        """Fold the accumulator at `other[other_offset]` into this one, slot by slot."""
        if other[other_offset] == EMPTY:
            return
        n = self.tiles
        ref = max(state[offset], other[other_offset])
        oldest = ref - n  # exclusive
        for s in range(1, n + 1):
            theirs = other[other_offset + s]
            if theirs <= oldest:
                continue
            ours = state[offset + s]
            if ours == theirs:
                state[offset + s + n] += other[other_offset + s + n]
            elif ours < theirs:
                state[offset + s] = theirs
                state[offset + s + n] = other[other_offset + s + n]
        state[offset] = ref

    def result(self, state: array, offset: int) -> float | None:
        """The windowed sum as of the maximum accepted event time; None if nothing was accepted."""
        ref = state[offset]
        if ref == EMPTY:
            return None
        n = self.tiles
        oldest = ref - n
        total = 0.0
        for s in range(offset + 1, offset + 1 + n):
            if state[s] > oldest:
                total += state[s + n]
        return total


@dataclass(frozen=True, kw_only=True)
class DecayedSum:
    """Exponentially decayed sum, referenced to the maximum accepted event time `ref`.

    half_life_ms: milliseconds for a value to count half (positive).

    value = sum of v_i * 2^(-(ref - e_i) / half_life). A newer event first decays the sum to its own time;
    an older one is added decayed. State at `offset`: ref (event time, ms), then the sum.
    """

    half_life_ms: int

    def __post_init__(self) -> None:
        if self.half_life_ms <= 0:
            raise ValueError(f"half_life_ms must be positive, got {self.half_life_ms}")

    width = 2

    @property
    def state_suffix(self) -> str:
        return f"decayed_sum_{self.half_life_ms}ms"

    def initialize(self, state: array, offset: int) -> None:
        state[offset] = EMPTY
        state[offset + 1] = 0.0

    def add(self, state: array, offset: int, value: float, event_time_ms: int) -> None:
        ref = state[offset]
        if ref == EMPTY:
            state[offset] = event_time_ms
            state[offset + 1] = value
        elif event_time_ms > ref:
            state[offset + 1] = state[offset + 1] * 0.5 ** ((event_time_ms - ref) / self.half_life_ms) + value
            state[offset] = event_time_ms
        else:
            state[offset + 1] += value * 0.5 ** ((ref - event_time_ms) / self.half_life_ms)

    def merge(self, state: array, offset: int, other: array, other_offset: int) -> None:
        theirs = other[other_offset]
        if theirs == EMPTY:
            return
        ours = state[offset]
        if ours == EMPTY:
            state[offset], state[offset + 1] = theirs, other[other_offset + 1]
        elif theirs > ours:
            decayed = state[offset + 1] * 0.5 ** ((theirs - ours) / self.half_life_ms)
            state[offset], state[offset + 1] = theirs, decayed + other[other_offset + 1]
        else:
            state[offset + 1] += other[other_offset + 1] * 0.5 ** ((ours - theirs) / self.half_life_ms)

    def result(self, state: array, offset: int) -> float | None:
        """The decayed sum as of the maximum accepted event time; None if nothing was accepted."""
        return None if state[offset] == EMPTY else state[offset + 1]
