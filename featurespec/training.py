"""Training sets as data: which events are the rows (the spine), what happened after each (labels), and which
feature sets and serving sets each row is joined with, as of the row's own time.

A `TrainingSet` names `FeatureSet` and `SortedSetSpec` values, never copies of them: the backfill
(`fyp training-set build`), the served-feature join job and the skew check all read the same declarations the
features job computes. Predicates are Flink SQL over engagement-row columns (udfs/envelope.py), the language
aggregations use, so the Flink join job runs them as written and the Python backfill compiles them with
`featurespec.reference.sql`.

>>> from datetime import timedelta
>>> Label(name="liked", where="event_type = 'like'", within=timedelta(minutes=10)).column
'label_liked'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from featurespec.declaration import FeatureSet, SortedSetSpec, _check_name

__all__ = ["Label", "TrainingSet", "feature_column"]

# Spine columns a label may match on: the label event and the spine row agree on each.
LABEL_KEYS = frozenset({"user_id", "video_id", "author_id", "sound_id"})


def feature_column(feature_set: FeatureSet | SortedSetSpec, column: str) -> str:
    """The training-table column of one feature: `<set name>__<column>`, e.g. `video_engagement__plays_1m`.

    >>> from features.engagement.video_engagement import v1
    >>> feature_column(v1, "plays_1m")
    'video_engagement__plays_1m'
    """
    return f"{feature_set.name}__{column}"


@dataclass(frozen=True, kw_only=True)
class Label:
    """True when an engagement event matching `where`, with the spine row's `keys`, has an event time in
    [row time, row time + within). The spine row itself never counts (it is matched by event id)."""

    name: str
    where: str
    within: timedelta
    keys: tuple[str, ...] = ("user_id", "video_id")
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("label", self.name)
        if self.within <= timedelta(0):
            raise ValueError(f"label {self.name}: `within` must be positive")
        unknown = set(self.keys) - LABEL_KEYS
        if not self.keys or unknown:
            raise ValueError(f"label {self.name}: keys must be among {sorted(LABEL_KEYS)}, got {self.keys}")

    @property
    def column(self) -> str:
        return f"label_{self.name}"


@dataclass(frozen=True, kw_only=True)
class TrainingSet:
    """Rows, labels and features of one training table, `training.<name>`.

    spine: a Flink SQL predicate over engagement rows: each matching history event is one row (e.g.
        "event_type = 'impression'").
    labels: what followed each row, within each label's horizon.
    feature_sets: joined by their entity's key columns, as of the row's event time, with the read-time rules
        serving applies (fyp.serving.layout); a per-hashtag set is summed over the row's distinct hashtags.
    histories: sorted serving sets keyed by the user (e.g. recent positives), as of the row's event time:
        members newest first, at most the set's `max_size`.
    """

    name: str
    version: int
    spine: str
    labels: tuple[Label, ...]
    feature_sets: tuple[FeatureSet, ...] = ()
    histories: tuple[SortedSetSpec, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("training set", self.name)
        if self.version < 1:
            raise ValueError(f"{self.name}: version must be >= 1")
        if not self.labels:
            raise ValueError(f"{self.name}: declare at least one label")
        names = [label.name for label in self.labels]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate label names in {names}")
        set_names = [fs.name for fs in (*self.feature_sets, *self.histories)]
        if len(set(set_names)) != len(set_names):
            raise ValueError(f"{self.name}: a set is joined twice in {set_names} (one version of each set)")
        for history in self.histories:
            if history.key_columns != ("user_id",):
                raise ValueError(f"{self.name}: history {history.name} must be keyed by user_id")

    @property
    def qualified_name(self) -> str:
        return f"{self.name}.v{self.version}"

    @property
    def table(self) -> str:
        """The backfilled table, in the Iceberg namespace `training`."""
        return f"training.{self.name}"

    @property
    def served_table(self) -> str:
        """The table the served-feature join job writes (rows as they were served, with their labels)."""
        return f"training.served_{self.name}"

    @property
    def label_horizon(self) -> timedelta:
        """The longest label window: a row's labels are final this long after its event time."""
        return max(label.within for label in self.labels)
