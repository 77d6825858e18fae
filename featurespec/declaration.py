"""Feature declarations as data: entity, aggregations, windows and decays, in the spirit of Chronon's GroupBy.

A `FeatureSet` is declared once (in `features/`); `featurespec.sql` compiles it to Flink SQL, the Redis
sink options and `docs/FEATURES.md` follow from it, and `fyp.serving` decodes Redis values with it.
Durations are `timedelta` in declarations and milliseconds at the edges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

__all__ = [
    "AUTHOR",
    "ENTITIES",
    "REGION_LANGUAGE",
    "SOUND",
    "USER",
    "USER_AUTHOR",
    "USER_HASHTAG",
    "VIDEO",
    "Aggregation",
    "DerivedColumn",
    "Entity",
    "FeatureSet",
    "Ratio",
    "SortedSetSpec",
    "double_literals",
    "key_prefix",
    "window_label",
]

Operation = Literal["count", "sum"]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"{kind} name {name!r} must be lower_snake_case")


# A quoted string, a backquoted name, or an exact decimal literal such as 1.0 or .95 (not part of a name,
# and not already followed by an exponent).
_SQL_PART = re.compile(r"'(?:[^']|'')*'|`[^`]*`|(?<![\w.])(\d+\.\d*|\.\d+)(?![\w.])")


def double_literals(sql: str) -> str:
    """Rewrite exact decimal literals (`1.0`, `0.95`) of a Flink SQL snippet as DOUBLE literals (`1.0E0`).

    In Flink SQL `1.0` is a DECIMAL, so `CASE WHEN ... THEN 1.0 ELSE 0.0 END` or `watch_ms >= 0.95 * d`
    computes in DECIMAL per row (castToDecimal, BigDecimal arithmetic: a measured share of the features job's
    CPU, docs/PERFORMANCE.md) before the result is cast to DOUBLE anyway. The Python peers and `fyp verify`
    already read these literals as float64, so the job now computes as they do. Quoted text is left alone.

    >>> double_literals("CASE WHEN x = '1.5' AND `c1.0` > 0.95 THEN 1.0 ELSE 0 END")
    "CASE WHEN x = '1.5' AND `c1.0` > 0.95E0 THEN 1.0E0 ELSE 0 END"
    """
    return _SQL_PART.sub(lambda m: f"{m.group(1)}E0" if m.group(1) else m.group(0), sql)


def key_prefix(name: str, version: int) -> str:
    """The Redis key prefix of version `version` of a feature or sorted set: every key of that version starts
    with it, and no key of another version or set does (names are lower_snake_case, so no `:` inside).

    >>> key_prefix("video_engagement", 2)
    'fyp:video_engagement:v2:'
    """
    return f"fyp:{name}:v{version}:"


def window_label(window: timedelta) -> str:
    """`1m`, `10m`, `1h`, `24h`: the suffix of a windowed column."""
    seconds = int(window.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@dataclass(frozen=True, kw_only=True)
class Entity:
    """What features are keyed by. `key_columns` are engagement-row columns, except `hashtag`, which is one
    element of the row's `hashtags` (the row is exploded per hashtag).

    few_keys: a small key space (hundreds of keys, e.g. region x language), so that a mini-batch holds many
    rows per key: its sets are pre-aggregated per key and mini-batch before the shuffle (two-phase). Other
    entities (users, videos, pairs) are aggregated once, after the shuffle: a mini-batch rarely holds one of
    their keys twice, and a local aggregate would only add work (docs/PERFORMANCE.md)."""

    name: str
    key_columns: tuple[str, ...]
    few_keys: bool = False

    def __post_init__(self) -> None:
        _check_name("entity", self.name)
        if not self.key_columns:
            raise ValueError(f"entity {self.name} needs at least one key column")

    @property
    def explodes_hashtags(self) -> bool:
        return "hashtag" in self.key_columns


USER = Entity(name="user", key_columns=("user_id",))
VIDEO = Entity(name="video", key_columns=("video_id",))
AUTHOR = Entity(name="author", key_columns=("author_id",))
SOUND = Entity(name="sound", key_columns=("sound_id",))
USER_AUTHOR = Entity(name="user_author", key_columns=("user_id", "author_id"))
USER_HASHTAG = Entity(name="user_hashtag", key_columns=("user_id", "hashtag"))
REGION_LANGUAGE = Entity(name="region_language", key_columns=("region", "language"), few_keys=True)
ENTITIES = (USER, VIDEO, AUTHOR, SOUND, USER_AUTHOR, USER_HASHTAG, REGION_LANGUAGE)


@dataclass(frozen=True, kw_only=True)
class Aggregation:
    """A count of matching events, or a sum of a numeric SQL expression over them.

    where: a Flink SQL predicate over engagement-row columns (None: every event).
    expression: the summed Flink SQL expression over engagement-row columns, for `sum`.

    >>> Aggregation(name="plays", operation="count", where="event_type = 'watch'").value_sql()
    "CASE WHEN event_type = 'watch' THEN 1.0E0 ELSE 0.0E0 END"
    """

    name: str
    operation: Operation
    where: str | None = None
    expression: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("aggregation", self.name)
        if self.operation not in ("count", "sum"):
            raise ValueError(f"{self.name}: operation must be 'count' or 'sum', got {self.operation!r}")
        if (self.operation == "sum") != (self.expression is not None):
            raise ValueError(f"{self.name}: `expression` is required for sum and not allowed for count")

    def value_sql(self) -> str:
        """The summed value as Flink SQL, in DOUBLE throughout (`double_literals`)."""
        value = "1.0" if self.operation == "count" else f"CAST({self.expression} AS DOUBLE)"
        # ELSE 0.0, not NULL: the window functions ignore NULL rows, which would then not advance a column's
        # reference time, and readers assume every column is as of the group's MAX(event_time).
        return double_literals(f"CASE WHEN {self.where} THEN {value} ELSE 0.0 END" if self.where else value)


@dataclass(frozen=True, kw_only=True)
class Ratio:
    """A feature derived at read time: numerator / denominator of two aggregations over the same window."""

    name: str
    numerator: str
    denominator: str
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("ratio", self.name)


@dataclass(frozen=True, kw_only=True)
class DerivedColumn:
    """A column computed per row before aggregating, e.g. a comment's sentiment score.

    sql: a Flink SQL expression over engagement-row columns; it may call a function the job registers
    (udfs/flink_functions.py `SCALAR_FUNCTIONS`), which runs only on the rows the feature set's `where` keeps.
    Those functions are guarded (udfs/guard.py): on a row where one fails it gives NULL, and a row with a NULL
    derived value is left out of the set (and dead-lettered by the job).

    >>> DerivedColumn(name="sentiment", sql="COMMENT_SENTIMENT(`comment_text`)").name
    'sentiment'
    """

    name: str
    sql: str
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("derived column", self.name)


@dataclass(frozen=True, kw_only=True)
class FeatureSet:
    """Aggregations of one entity over sliding windows and exponential decays, stored as one Redis value.

    windows: sliding windows, each kept as `tiles` buckets (granularity = window / tiles).
    half_lives: exponentially decayed counterparts (read-time decay, exact at any read time).
    ttl: how long Redis keeps an entity with no new events; at least the longest window.
    where: a filter on the whole set, applied before anything else (e.g. "event_type = 'comment'").
    derived: columns computed per kept row, which the aggregations may use like engagement-row columns.
        A set with derived columns must declare `where`, so that a (possibly Python) function never runs on
        every event: the features job reads the set from a view of its `where` rows (featurespec.sql
        `derived_sources`), so only those reach it (tests/flink/test_derived_rows.py).
    """

    name: str
    version: int
    entity: Entity
    aggregations: tuple[Aggregation, ...]
    windows: tuple[timedelta, ...]
    tiles: int = 12
    half_lives: tuple[timedelta, ...] = ()
    ratios: tuple[Ratio, ...] = ()
    ttl: timedelta = timedelta(days=2)
    description: str = ""
    where: str | None = field(default=None)  # a filter on the whole set, e.g. "sound_id IS NOT NULL"
    derived: tuple[DerivedColumn, ...] = ()

    def __post_init__(self) -> None:
        _check_name("feature set", self.name)
        if self.version < 1:
            raise ValueError(f"{self.name}: version must be >= 1")
        if not self.aggregations:
            raise ValueError(f"{self.name}: declare at least one aggregation")
        names = [a.name for a in self.aggregations]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate aggregation names in {names}")
        if not self.windows and not self.half_lives:
            raise ValueError(f"{self.name}: declare windows or half_lives")
        for window in self.windows:
            if window.total_seconds() <= 0 or (window.total_seconds() * 1000) % self.tiles:
                raise ValueError(f"{self.name}: window {window} must be positive and divisible into "
                                 f"{self.tiles} whole-millisecond tiles")
        if self.windows and self.ttl < max(self.windows):
            raise ValueError(f"{self.name}: ttl {self.ttl} is shorter than the longest window {max(self.windows)}")
        if self.derived and not self.where:
            raise ValueError(f"{self.name}: derived columns need a `where` filter, so that they are computed "
                             "only for the rows this set uses")
        derived_names = [d.name for d in self.derived]
        if len(set(derived_names)) != len(derived_names):
            raise ValueError(f"{self.name}: duplicate derived column names in {derived_names}")
        for ratio in self.ratios:
            missing = {ratio.numerator, ratio.denominator} - set(names)
            if missing:
                raise ValueError(f"{self.name}: ratio {ratio.name} uses undeclared {sorted(missing)}")

    @property
    def qualified_name(self) -> str:
        return f"{self.name}.v{self.version}"

    @property
    def counted_where(self) -> str | None:
        """The rows that count in at least one aggregation: the OR of the aggregations' `where`s, or None when
        one of them counts every row. Any other row would change none of the set's values, so the job drops
        it before the shuffle (most events are impressions, which e.g. user x hashtag does not count), and an
        entity's event time is that of its last counted event."""
        predicates: list[str] = []
        for aggregation in self.aggregations:
            if aggregation.where is None:
                return None
            if aggregation.where not in predicates:
                predicates.append(aggregation.where)
        # A predicate that implies another adds nothing to the OR (completions next to plays).
        broadest = [q for q in predicates if not any(_narrows(q, p) for p in predicates)]
        return broadest[0] if len(broadest) == 1 else " OR ".join(f"({p})" for p in broadest)

    @property
    def key_prefix(self) -> str:
        """Redis key prefix; the version is part of it, so a changed definition never reads old values."""
        return key_prefix(self.name, self.version)

    def columns(self) -> tuple[str, ...]:
        """Value columns in storage order: windowed sums, then decayed sums."""
        windowed = [f"{a.name}_{window_label(w)}" for a in self.aggregations for w in self.windows]
        decayed = [f"{a.name}_decay_{window_label(h)}" for a in self.aggregations for h in self.half_lives]
        return (*windowed, *decayed)


@dataclass(frozen=True, kw_only=True)
class SortedSetSpec:
    """A serving set: per key, the members with the highest score, trimmed to `max_size` (a Redis sorted set).

    score: a Flink SQL aggregate expression over the group (key columns + member), e.g. MAX(event_time); with
    `per_event`, an expression over one event instead, e.g. event_time.
    per_event: Redis keeps each member's greatest score (ZADD GT), so the job writes every event's score as it
    comes, with no Flink state and no shuffle, and a replay changes nothing. Right for scores that only grow
    (a last-seen time); an aggregate score (a decayed count) needs the group state.
    state_ttl: how long the job keeps an idle group's state; required unless `per_event`.
    derived: columns computed per row (plain Flink SQL, no guarded function) that a key or the member may name,
    e.g. a market "US:en" from region and language, or a constant key for a set over every row.
    """

    name: str
    version: int
    key_columns: tuple[str, ...]
    member_column: str
    score: str
    where: str
    max_size: int
    ttl: timedelta
    per_event: bool = False
    state_ttl: timedelta | None = None
    derived: tuple[DerivedColumn, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("sorted set", self.name)
        if self.max_size < 1:
            raise ValueError(f"{self.name}: max_size must be >= 1")
        if not self.key_columns:
            raise ValueError(f"{self.name}: a sorted set needs a key column (derive a constant for one global set)")
        names = [d.name for d in self.derived]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: derived columns {names} repeat a name")
        unused = set(names) - {*self.key_columns, self.member_column}
        if unused:
            raise ValueError(f"{self.name}: derived columns {sorted(unused)} are neither a key nor the member")
        if self.state_ttl is None and not self.per_event:
            raise ValueError(f"{self.name}: an aggregated score needs state_ttl (or declare per_event=True)")

    @property
    def qualified_name(self) -> str:
        return f"{self.name}.v{self.version}"

    @property
    def key_prefix(self) -> str:
        return key_prefix(self.name, self.version)


def _narrows(narrow: str, broad: str) -> bool:
    """Whether predicate `narrow` reads "`broad` AND r" with no OR in r, so that every row it admits `broad`
    admits too (an OR in r would bind looser than the AND: "p AND a OR b" admits rows where b alone holds)."""
    prefix = f"{broad} AND "
    return narrow.startswith(prefix) and " OR " not in narrow[len(prefix):].upper()
