"""A feature set compiled to straight-line Python for the benchmark peers: the reference evaluator's values at a
fraction of its cost (`featurespec.reference.evaluate.FeatureEvaluator` stays the readable definition).

`FastFold.of(feature_set)` generates, once per set, three functions from the declaration: `key(row)`, `update(state,
row)` and the column values of a state. The aggregations' `value_sql()` and the set's `where` and `counted_where` are
translated by `featurespec.reference.sql` (the same translator the reference uses) and inlined into that code, so
nothing is dispatched per column at run time. What makes it cheaper than the reference, per entity:

- one ring of tiles per window, shared by all of that window's aggregations: one tile index test per window and
  row, and packing finds a window's valid tiles once and adds each one's sums to all columns at once (`map`);
- forward decay: each decayed sum is kept as sum(v * 2^((t - L) / half_life)) against a landmark time L (the
  entity's first event), one multiply-add per non-zero value and half-life; the value as of the newest event time
  `ref` is that sum times 2^((L - ref) / half_life). The landmark moves forward (a rescale) when the weights grow
  past 2^400;
- values of zero are not added (most aggregations are 0.0 for most rows: `CASE WHEN ... ELSE 0.0`).

Equal to the reference evaluator (tests/unit/fyp/bench/test_fast_fold.py), with one difference of rounding and one
of semantics:

- windowed sums are the reference's bit for bit (the same tile sums, added in the same order);
- decayed sums are rounded differently (forward decay vs decaying the sum to each newer event): within 1e-9
  relative, or 1e-12 absolute where likes and unlikes cancel to near zero;
- the reference leaves a column's reference time behind on a row whose value for that column is NULL or not
  finite (as Flink's window functions do); here every column of an entity shares its tiles and its reference time,
  so such a value counts as 0.0 and the row still advances every column. A row of a good decoded event never gives
  one for the engagement sets of `features/engagement/` (the decoder's field contracts, udfs/limits.py); the fold
  counts such rows in `irregular_rows` so that a caller can see they happened.

Not handled, refused by `FastFold.of` with ValueError: sets that explode hashtags (one row, many keys) and sets with
derived columns (a guarded per-row function).

>>> from features.engagement.video_engagement import v1
>>> from featurespec.reference.sql import engagement_row
>>> fold = FastFold.of(v1)
>>> state = fold.new_state()
>>> row = engagement_row(event_type="watch", event_time=1_000, video_id="v1", watch_ms=3_000,
...                      video_duration_ms=10_000)
>>> fold.key(row)
'v1'
>>> fold.update(state, row)
>>> values = fold.values(state)
>>> values["plays_1m"], values["watch_ms_24h"], values["likes_1m"]
(1.0, 3000.0, 0.0)
"""

from __future__ import annotations

import math
import operator
import struct
import sys
from array import array
from collections.abc import Callable
from typing import Any

from featurespec.declaration import FeatureSet
from featurespec.reference.sql import COLUMN_INDEX, compile_predicate, compile_value

__all__ = ["FastFold"]

Row = tuple[Any, ...]
State = list[float]

_EMPTY = -math.inf
_LITTLE_ENDIAN = sys.byteorder == "little"
_HEADER = struct.Struct("<qq")  # event time, update time: ms
# Rescale the forward-decay sums when a weight 2^((t - L) / half_life) would pass 2^400: far from float64's
# 2^1023, so that a value times its weight cannot overflow, and rare (every 400 half-lives of an entity's life).
_RESCALE_HALF_LIVES = 400


class FastFold:
    """One feature set compiled for the hot loop: `key(row)`, `new_state()`, `update(state, row)`, `pack(state)`,
    with the API and the packed layout of `FeatureEvaluator` (docs/REDIS_LAYOUT.md).

    A state is a `list` of floats (`_Layout` describes it); keep it in the process, it is not a stored format.
    """

    def __init__(self, feature_set: FeatureSet) -> None:
        if feature_set.entity.explodes_hashtags:
            raise ValueError(f"{feature_set.qualified_name}: FastFold does not handle sets that explode hashtags "
                             "(one row, many keys); use featurespec.reference.evaluate.FeatureEvaluator")
        if feature_set.derived:
            raise ValueError(f"{feature_set.qualified_name}: FastFold does not handle derived columns; use "
                             "featurespec.reference.evaluate.FeatureEvaluator")
        self.feature_set = feature_set
        # Rows with a NULL aggregation value, plus non-finite values (one per value): module docstring.
        self.irregular_rows = 0
        self._layout = _Layout(feature_set)
        namespace: dict[str, Any] = {}
        source = _generate(feature_set, self._layout, namespace)
        namespace["_irregular"] = self._count_irregular
        exec(compile(source, f"<fast fold {feature_set.qualified_name}>", "exec"), namespace)  # from the declaration
        self.source = source  # the generated code, for reading and debugging
        self.key: Callable[[Row], str | None] = namespace["key"]
        self.update: Callable[[State, Row], None] = namespace["update"]
        self._results: Callable[[State], list[float]] = namespace["results"]
        self._empty = self._layout.empty()

    @classmethod
    def of(cls, feature_set: FeatureSet) -> FastFold:
        return cls(feature_set)

    def _count_irregular(self) -> None:
        self.irregular_rows += 1

    @property
    def columns(self) -> tuple[str, ...]:
        return self.feature_set.columns()

    def new_state(self) -> State:
        return list(self._empty)

    def event_time(self, state: State) -> int:
        """MAX(event_time) over the entity's rows, ms (0 when it has none, as FeatureEvaluator.event_time)."""
        return 0 if state[0] == _EMPTY else int(state[0])

    def results(self, state: State) -> list[float | None]:
        """Column values in `columns` order; None for every column of an entity that has no row."""
        if state[0] == _EMPTY:
            return [None] * len(self.columns)
        return self._results(state)

    def values(self, state: State) -> dict[str, float | None]:
        return dict(zip(self.columns, self.results(state), strict=True))

    def pack(self, state: State, *, update_time_ms: int = 0) -> bytes:
        """The packed value, as FeatureEvaluator.pack: int64 LE event time, int64 LE update time, float32 LE per
        column (NaN for a column with no rows, float32 overflow to ±inf)."""
        header = _HEADER.pack(self.event_time(state), update_time_ms)
        floats = array("f", self._results(state) if state[0] != _EMPTY else [math.nan] * len(self.columns))
        if not _LITTLE_ENDIAN:
            floats.byteswap()
        return header + floats.tobytes()


class _Layout:
    """Where each accumulator lives in an entity's state list.

    [0] MAX(event_time), -inf while empty; [1] the forward-decay landmark L, -inf while empty;
    per window w: [ring] the newest tile index (-inf while empty), then `tiles` slots each holding the tile index it
    has data for (-inf: none), then per slot one sum per aggregation; then per half-life one forward-decay sum per
    aggregation; then a scratch area that rows too old for a window write to (so that the generated code needs no
    branch per aggregation and window), never read.
    """

    def __init__(self, feature_set: FeatureSet) -> None:
        self.aggregations = len(feature_set.aggregations)
        self.tiles = feature_set.tiles
        self.tile_ms = [int(w.total_seconds() * 1000) // self.tiles for w in feature_set.windows]
        self.half_life_ms = [int(h.total_seconds() * 1000) for h in feature_set.half_lives]
        a, n = self.aggregations, self.tiles
        offset = 2
        self.rings: list[int] = []  # per window: offset of its newest tile index; slots follow
        self.sums: list[int] = []  # per window: offset of slot 0's sums
        for _ in self.tile_ms:
            self.rings.append(offset)
            self.sums.append(offset + 1 + n)
            offset += 1 + n + n * a
        self.decays = [offset + h * a for h in range(len(self.half_life_ms))]
        offset += len(self.half_life_ms) * a
        self.scratch = offset
        self.width = offset + a

    def empty(self) -> State:
        state = [0.0] * self.width
        state[0] = state[1] = _EMPTY
        for ring in self.rings:
            state[ring: ring + 1 + self.tiles] = [_EMPTY] * (1 + self.tiles)
        return state


def _generate(feature_set: FeatureSet, layout: _Layout, namespace: dict[str, Any]) -> str:
    """The source of `key`, `update` and `results` for `feature_set`; fills `namespace` with what they call."""
    lines: list[str] = []
    namespace.update(_EMPTY=_EMPTY, _ZEROS=[0.0] * layout.aggregations, _add=operator.add)

    def inline(function: Callable[..., Any]) -> str:
        # The translator's Python for one SQL snippet (a single expression over the row `r`), and its helpers.
        namespace.update({k: v for k, v in function.__globals__.items() if k.startswith("_")})
        return function.python_source

    # key(row): key columns present, then the set's `where`, then "counts in at least one aggregation".
    key_index = [COLUMN_INDEX[c] for c in feature_set.entity.key_columns]
    lines.append("def key(r):")
    for j, index in enumerate(key_index):
        lines += [f"    k{j} = r[{index}]", f"    if not k{j}:", "        return None"]
    for sql in (feature_set.where, feature_set.counted_where):
        if sql:
            lines += [f"    if not {inline(compile_predicate(sql))}:", "        return None"]
    joined = " + ':' + ".join(f"k{j}" for j in range(len(key_index)))
    lines += [f"    return {joined}", ""]

    # update(state, row)
    a, n = layout.aggregations, layout.tiles
    lines += ["def update(s, r):", f"    t = r[{COLUMN_INDEX['event_time']}]"]
    for j, aggregation in enumerate(feature_set.aggregations):
        lines += ["    try:", f"        v{j} = {inline(compile_value(aggregation.value_sql()))}",
                  "    except (TypeError, ValueError, OverflowError):",  # as FeatureEvaluator.update
                  f"        v{j} = None"]
    # NULL (None) is falsy, so the adds below skip it like a 0.0; NaN and ±inf are caught there (x - x != 0.0)
    values = ", ".join(f"v{j}" for j in range(a))
    lines += [f"    if None in ({values},):", "        _irregular()", "    if t > s[0]:", "        s[0] = t"]
    for w, tile_ms in enumerate(layout.tile_ms):
        ring, sums = layout.rings[w], layout.sums[w]
        lines += [f"    i = t // {tile_ms}",
                  f"    ref = s[{ring}]",
                  "    if i > ref:",
                  f"        s[{ring}] = ref = i",
                  f"    if i > ref - {n}:",
                  f"        k = i % {n}",
                  f"        o{w} = {sums} + k * {a}",
                  f"        if s[{ring + 1} + k] != i:",  # a stale or never-used slot: it starts again from zero
                  f"            s[{ring + 1} + k] = i",
                  f"            s[o{w}: o{w} + {a}] = _ZEROS",
                  "    else:",  # too old for this window: the adds go to the scratch area
                  f"        o{w} = {layout.scratch}"]
    if layout.half_life_ms:
        lines += ["    landmark = s[1]", "    if landmark == _EMPTY:", "        landmark = s[1] = t",
                  f"    elif t - landmark > {_RESCALE_HALF_LIVES * min(layout.half_life_ms)}:",
                  "        _rescale(s, t)", "        landmark = t"]
        for h, half_life_ms in enumerate(layout.half_life_ms):
            lines.append(f"    w{h} = 2.0 ** ((t - landmark) / {half_life_ms})")
    for j in range(a):
        lines += [f"    if v{j}:", f"        if v{j} - v{j} != 0.0:", "            _irregular()",
                  f"            v{j} = 0.0"]
        for w in range(len(layout.tile_ms)):
            lines.append(f"        s[o{w} + {j}] += v{j}")
        for h in range(len(layout.half_life_ms)):
            lines.append(f"        s[{layout.decays[h] + j}] += v{j} * w{h}")
    lines.append("")

    # _rescale(state, t): move the landmark to t (rare)
    lines += ["def _rescale(s, t):", "    landmark = s[1]", "    s[1] = t"]
    for h, half_life_ms in enumerate(layout.half_life_ms):
        lines.append(f"    f = 2.0 ** ((landmark - t) / {half_life_ms})")
        lines += [f"    s[{layout.decays[h] + j}] *= f" for j in range(a)]
    lines.append("")

    # results(state): columns() order, windowed sums (aggregation-major) then decayed sums. A window's sum is its
    # valid tiles' sums added in slot order from 0.0, as SlidingSum.result adds them: the same float64, bit for bit.
    lines += ["def results(s):"]
    for w, ring in enumerate(layout.rings):
        lines += [f"    c{w} = None", f"    oldest = s[{ring}] - {n}"]
        for k in range(n):  # the first valid tile's sums as they are (0.0 + x is x: a sum is never -0.0)
            tile = f"s[{layout.sums[w] + k * a}:{layout.sums[w] + (k + 1) * a}]"
            lines += [f"    if s[{ring + 1 + k}] > oldest:",
                      f"        c{w} = {tile} if c{w} is None else list(map(_add, c{w}, {tile}))"]
        lines += [f"    if c{w} is None:", f"        c{w} = _ZEROS"]
    for h, half_life_ms in enumerate(layout.half_life_ms):
        lines.append(f"    f{h} = 2.0 ** ((s[1] - s[0]) / {half_life_ms})")
    values = [f"c{w}[{j}]" for j in range(a) for w in range(len(layout.tile_ms))]
    values += [f"s[{layout.decays[h] + j}] * f{h}" for j in range(a) for h in range(len(layout.half_life_ms))]
    lines += ["    return [", *(f"        {v}," for v in values), "    ]", ""]
    return "\n".join(lines)
