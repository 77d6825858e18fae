"""The skew check: the feature vectors serving logged against the backfill for the same (entity, time).

Each sampled served row (`training.served_<name>`, written by the served-feature join job) is treated as a spine
row at t = served_time for its user and its video: the backfill computes the user's and the video's main sets as
of t (fyp.training.pointintime), and each served column is compared with it (as float32; NaN and null equal null;
within fyp verify's relative tolerance for a different summation order). A differing set is recomputed without
the events a documented cause accounts for (fyp.training.explain finds the fewest); the first recomputation that
matches every column, with the served value's event time as its newest event, names the cause:

    in_flight  events the job had not written to Redis yet: every event newer than the served value's event time,
               and any older ones (client clocks make a partition's event times slightly out of order, and the job's
               deduplication on event_id lets a later event of a partition, through another of its subtasks, reach
               the entity's state before an earlier one: fyp.training.explain). The job holds an event for at
               most its bundle (the mini-batch interval, 200 ms by default, jobs/engagement_features.py; a job run
               with a longer `--mini-batch-ms` needs a larger bound) plus the Redis sink's flush interval (at most
               50 ms) after reading it, so every such event must have an event time within `in_flight_bound_ms`
               of served_time (those two plus DELIVERY_ALLOWANCE_MS for the client and Kafka), or the cause does
               not apply; the report gives the largest gap seen. A job that lags needs a larger bound, per Kafka
               partition where it trails some more than others (`partition_bounds_ms`, each capped by the
               global bound: `fyp demo` measures them).
    lateness   events with event_time < served_time that sit later in their Kafka partition than an event with
               event_time >= served_time: they arrived after the serve.

Any other difference is unexplained: a bug. There is no tile-edge cause: serving and the backfill decode the same
packed tiles with the same read-time rules at the same time, so tiles cannot disagree unless the states do.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from featurespec import FeatureSet
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import COLUMN_INDEX, engagement_row
from featurespec.training import TrainingSet, feature_column
from fyp.lake.verify import ABS_TOL, REL_TOL
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
from fyp.training.explain import Prefixes, dedup_lanes, explain
from fyp.training.history import ALLOWED_LATENESS_MS, History
from fyp.training.pointintime import feature_block
from fyp.training.search import SearchOutcome

__all__ = ["CAUSES", "DELIVERY_ALLOWANCE_MS", "IN_FLIGHT_BOUND_MS", "SkewReport", "check", "compare", "same",
           "sample_rows"]

CAUSES = {
    "in_flight": "events the job had not written to Redis yet at serving time (mini-batch and sink flush)",
    "lateness": "events that reached their Kafka partition after the serve (behind events newer than it)",
}
_MINI_BATCH_MS = 200  # jobs/engagement_features.py JOB_CONFIG "table.exec.mini-batch.allow-latency"
# connectors/redis_feature_sink.py's default flush_interval_ms; the features job flushes sooner (SINK_FLUSH_MS, 10 ms),
# so this bounds it from above.
_SINK_FLUSH_MS = 50
# From an event's event time to the job reading it: the client's own delay (the traffic generator stamps events up
# to 250 ms before sending), the producer's linger, Kafka; `fyp bench freshness` measured p99 0.4-2.3 s end to end
# under load (docs/PERFORMANCE.md).
DELIVERY_ALLOWANCE_MS = 3_000
IN_FLIGHT_BOUND_MS = _MINI_BATCH_MS + _SINK_FLUSH_MS + DELIVERY_ALLOWANCE_MS
UNEXPLAINED_LIMIT = 0.001  # the target: at most 0.1 % of rows unexplained

_USER, _VIDEO = COLUMN_INDEX["user_id"], COLUMN_INDEX["video_id"]


@dataclass(frozen=True, kw_only=True)
class SkewReport:
    """Served rows against the backfill.

    rows: served rows compared; mismatches: rows where some column differs; unexplained: rows where a difference
    has no documented cause; by_cause: rows per cause ("in_flight", "lateness", "in_flight+lateness");
    examples: a few differing rows, the unexplained first (request, entity, column, served and backfilled values,
    cause)."""

    rows: int
    mismatches: int
    unexplained: int
    by_cause: dict[str, int]
    examples: list[dict]
    skipped: int = 0  # served rows newer than the history's newest event (the history has not caught up)
    columns: int = 0
    in_flight_bound_ms: int = IN_FLIGHT_BOUND_MS
    max_in_flight_gap_ms: int | None = None  # the oldest in-flight event's distance to served_time, over all rows
    by_set: dict[str, dict[str, int]] = field(default_factory=dict)
    partition_bounds_ms: dict[int, int] = field(default_factory=dict)  # per Kafka partition, capped; others: the bound
    dedup_subtasks: int | None = None  # the job's deduplication subtasks the searches assumed (None: per partition)
    rows_with_own_bounds: int = 0  # rows whose request had bounds of its own (measured at that read), capped too
    beyond_own_bounds: int = 0  # differing values (per set) explained within the run's bounds but not their request's
    # Unexplained rows where a search stopped at its time limit without a candidate (fyp.training.search.SearchOutcome):
    # the search gave up there; it did not show that no documented cause fits. Counted as unexplained all the same.
    unexplained_at_search_limit: int = 0

    @property
    def mismatch_rate(self) -> float:
        return self.mismatches / self.rows if self.rows else 0.0

    @property
    def unexplained_rate(self) -> float:
        return self.unexplained / self.rows if self.rows else 0.0

    @property
    def ok(self) -> bool:
        return self.unexplained_rate <= UNEXPLAINED_LIMIT

    def as_dict(self) -> dict:
        return {"rows": self.rows, "mismatches": self.mismatches, "unexplained": self.unexplained,
                "mismatch_rate": self.mismatch_rate, "unexplained_rate": self.unexplained_rate, "ok": self.ok,
                "by_cause": self.by_cause, "by_set": self.by_set, "skipped": self.skipped, "columns": self.columns,
                "in_flight_bound_ms": self.in_flight_bound_ms,
                "partition_bounds_ms": {str(p): b for p, b in self.partition_bounds_ms.items()},
                "max_in_flight_gap_ms": self.max_in_flight_gap_ms, "dedup_subtasks": self.dedup_subtasks,
                "rows_with_own_bounds": self.rows_with_own_bounds, "beyond_own_bounds": self.beyond_own_bounds,
                "unexplained_at_search_limit": self.unexplained_at_search_limit, "examples": self.examples}


def same(served: float | None, backfilled: float | None) -> bool:
    """float32 equality, NaN and null equal to null (and to each other), within fyp verify's tolerance."""
    a = math.nan if served is None else float(np.float32(served))
    b = math.nan if backfilled is None else float(np.float32(backfilled))
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _main_set(training_set: TrainingSet, entity: str) -> FeatureSet | None:
    return next((fs for fs in training_set.feature_sets if fs.entity.name == entity), None)


class _Arrivals:
    """Per Kafka partition, the first offset of an event with event_time >= T, for any T (what had arrived by then)."""

    def __init__(self, partitions: np.ndarray, offsets: np.ndarray, times: np.ndarray) -> None:
        self._by_partition: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        known = offsets >= 0
        for p in np.unique(partitions[known]).tolist():
            mine = known & (partitions == p)
            order = np.argsort(offsets[mine], kind="stable")
            self._by_partition[p] = (offsets[mine][order], np.maximum.accumulate(times[mine][order]))

    def first_newer(self, partition: int, t: int) -> float:
        found = self._by_partition.get(partition)
        if found is None:
            return math.inf
        offsets, newest = found
        i = int(np.searchsorted(newest, t, "left"))
        return float(offsets[i]) if i < len(offsets) else math.inf

    def arrived_after(self, history: History, i: int, t: int) -> bool:
        """Whether history row i sits in its partition after an event with event_time >= t."""
        return bool(history.offsets[i] >= 0 and history.offsets[i] > self.first_newer(int(history.partitions[i]), t))


def compare(training_set: TrainingSet, served, history: History, *, arrivals: History | None = None,
            in_flight_bound_ms: int = IN_FLIGHT_BOUND_MS, partition_bounds_ms: Mapping[int, int] | None = None,
            dedup_subtasks: int | None = None, request_bounds_ms: Mapping[str, Mapping[int, int]] | None = None,
            max_examples: int = 5) -> SkewReport:
    """Compare served rows (an Arrow table with the served table's columns) with the backfill from `history`.

    history: the engagement rows of the served users and videos at least (with lateness flags if partial).
    arrivals: rows (any columns but Kafka coordinates and event time may be empty) giving each partition's order,
        for the lateness cause, and the history's newest event time; default `history` itself.
    partition_bounds_ms: the in-flight bound per Kafka partition (the features job trails some partitions more
        than others), each capped at in_flight_bound_ms; a partition not named has in_flight_bound_ms.
    dedup_subtasks: the features job's parallelism when it served these rows (its deduplication's subtasks): the
        in-flight searches then take a suffix per partition and subtask (fyp.training.explain.dedup_lanes). None:
        per partition, as if the job ran one such subtask.
    request_bounds_ms: per request id, per partition, the bound of that serve alone (the job's lag measured at
        that read, `fyp demo`'s LoggedReads), capped at in_flight_bound_ms; a partition it does not name keeps
        partition_bounds_ms. A row is searched within its request's bounds first (fewer recent events to combine,
        so the capped searches reach further), then, if that finds nothing, within the run's: the measurement sees
        a partition's leading deduplication lane only, so it is no bound on the trailing one. The report counts
        the values only the second search explained (`beyond_own_bounds`).
    """
    import pyarrow as pa

    served_ms = served.column("served_time").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy() // 1000
    source = arrivals or history
    newest = int(source.event_times.max()) if len(source) else -1
    keep = served_ms <= newest
    served = served.filter(pa.array(keep))
    served_ms = served_ms[keep]
    n = served.num_rows
    lookup_rows = [engagement_row(user_id=u, video_id=v) for u, v in zip(
        served.column("user_id").to_pylist(), served.column("video_id").to_pylist(), strict=True)]
    order = _Arrivals(source.partitions, source.offsets, source.event_times)
    requests = served.column("request_id").to_pylist() if "request_id" in served.column_names else [None] * n
    row_bounds = [{**(partition_bounds_ms or {}), **(request_bounds_ms or {}).get(rid, {})} for rid in requests]
    own_bounds = sum(rid in (request_bounds_ms or {}) for rid in requests)
    beyond_own_bounds = 0  # rows (per set) explained within the run's bounds but not within their request's
    admitted = history.admitted()
    bad_rows: dict[int, set[str]] = {}
    unexplained_rows: set[int] = set()
    at_search_limit: set[int] = set()  # unexplained rows whose search gave up at its time limit (in some set) ...
    searched_out: set[int] = set()  # ... and those with a set whose searches all ran to the end
    examples: list[dict] = []
    seen: set[tuple] = set()  # (set, request, entity, served time) of the examples
    by_set: dict[str, dict[str, int]] = {}
    gaps: list[int] = []
    compared_columns = 0
    for feature_set in filter(None, (_main_set(training_set, "user"), _main_set(training_set, "video"))):
        block = feature_block(feature_set, history.rows, admitted, history.event_times, lookup_rows, served_ms)
        names = [(i, c) for i, c in enumerate(block.columns) if feature_column(feature_set, c) in served.column_names]
        compared_columns += len(names)
        served_values = {c: served.column(feature_column(feature_set, c)).to_pylist() for _, c in names}
        time_column = f"{feature_set.name}__event_time_ms"
        served_times = (served.column(time_column).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
                        if time_column in served.column_names else np.zeros(n, np.int64))
        differing = [r for r in range(n) if not all(same(served_values[c][r], block.values[r, i]) for i, c in names)]
        counts = Counter()
        entity_rows = _entity_rows(feature_set, history, admitted, [lookup_rows[r] for r in differing])
        prefixes = Prefixes(feature_set, history)
        lane_of = dedup_lanes(history, dedup_subtasks, ENGAGEMENT_FEATURES_JOB.max_parallelism) if dedup_subtasks \
            else None
        for r in sorted(differing, key=lambda r: (_key(feature_set, lookup_rows[r]), served_ms[r])):
            key = _key(feature_set, lookup_rows[r])
            at = int(served_ms[r])
            row = (feature_set, history, entity_rows.get(key, []), key, at, int(served_times[r]),
                   lambda i, at=at: order.arrived_after(history, i, at), in_flight_bound_ms,
                   {c: served_values[c][r] for _, c in names}, same, prefixes)
            outcome = SearchOutcome()
            found = explain(*row, row_bounds[r], lane_of, outcome)
            if found is None and row_bounds[r] != (partition_bounds_ms or {}):
                # The request's own bounds narrow the search (fewer recent events to combine), but the probe that
                # measured them sees a partition's leading lane only: a row they leave unexplained is searched
                # again within the run's bounds, the documented ones.
                outcome = SearchOutcome()  # only the last search's limit says whether it gave up
                found = explain(*row, partition_bounds_ms, lane_of, outcome)
                beyond_own_bounds += found is not None
            cause, gap = (found.cause, found.in_flight_gap_ms) if found else (None, None)
            counts[cause or "unexplained"] += 1
            if gap is not None:
                gaps.append(gap)
            if cause is None:
                unexplained_rows.add(r)
                (at_search_limit if outcome.at_time_limit else searched_out).add(r)
            else:
                bad_rows.setdefault(r, set()).update(cause.split("+"))
            if (feature_set.name, requests[r], key, int(served_ms[r])) not in seen:
                seen.add((feature_set.name, requests[r], key, int(served_ms[r])))
                i, c = next((i, c) for i, c in names if not same(served_values[c][r], block.values[r, i]))
                examples.append({"request_id": requests[r], "served_time_ms": int(served_ms[r]),
                                 "set": feature_set.name, "entity_id": key, "column": feature_column(feature_set, c),
                                 "served": served_values[c][r], "backfilled": _number(block.values[r, i]),
                                 "served_event_time_ms": int(served_times[r]), "cause": cause or "unexplained",
                                 **({"search_at_time_limit": True} if cause is None and outcome.at_time_limit else {})})
        by_set[feature_set.name] = {"mismatches": len(differing), **counts}
    # The unexplained first: they are what a reader of the report must look at.
    examples = sorted(examples, key=lambda e: e["cause"] != "unexplained")[:max_examples]
    for r in unexplained_rows:
        bad_rows.pop(r, None)
    by_cause = Counter("+".join(sorted(causes)) for causes in bad_rows.values())
    mismatching = len(bad_rows) + len(unexplained_rows)
    return SkewReport(rows=n, mismatches=mismatching, unexplained=len(unexplained_rows), by_cause=dict(by_cause),
                      examples=examples, skipped=int((~keep).sum()), columns=compared_columns,
                      in_flight_bound_ms=in_flight_bound_ms, max_in_flight_gap_ms=max(gaps) if gaps else None,
                      by_set=by_set, partition_bounds_ms=_capped(partition_bounds_ms, in_flight_bound_ms),
                      dedup_subtasks=dedup_subtasks, rows_with_own_bounds=own_bounds,
                      beyond_own_bounds=beyond_own_bounds,
                      unexplained_at_search_limit=len(at_search_limit - searched_out))


def _capped(bounds: Mapping[int, int] | None, cap: int) -> dict[int, int]:
    return {int(p): min(int(b), cap) for p, b in sorted((bounds or {}).items())}


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _key(feature_set: FeatureSet, row) -> str:
    return row[_USER] if feature_set.entity.name == "user" else row[_VIDEO]


def _entity_rows(feature_set: FeatureSet, history: History, admitted: np.ndarray, lookups: Sequence) -> dict:
    """History row indexes (admitted) of each looked-up entity, in Kafka order."""
    wanted = {_key(feature_set, row) for row in lookups}
    if not wanted:
        return {}
    evaluator = FeatureEvaluator.of(feature_set)
    found: dict[str, list[int]] = {}
    for i in history.kafka_order.tolist():
        if admitted[i]:
            for key in set(evaluator.keys(history.rows[i])) & wanted:
                found.setdefault(key, []).append(i)
    return found


def sample_rows(served, sample: int, seed: int):
    """`sample` rows of a served table (Arrow), the same for the same seed and rows in any order: sorted first, as
    a scan's row order follows its data files, which need not come back in the same order (two checks of one
    `fyp demo` table, seed 0, sampled different rows)."""
    import pyarrow as pa

    served = served.sort_by([("request_id", "ascending"), ("video_id", "ascending")])
    if served.num_rows > sample:
        chosen = np.sort(np.random.default_rng(seed).choice(served.num_rows, sample, replace=False))
        served = served.take(pa.array(chosen))
    return served


def check(catalog, training_set: TrainingSet, *, sample: int = 1000, seed: int = 0,
          in_flight_bound_ms: int = IN_FLIGHT_BOUND_MS,
          partition_bounds_ms: Mapping[int, int] | None = None, dedup_subtasks: int | None = None,
          request_bounds_ms: Mapping[str, Mapping[int, int]] | None = None) -> SkewReport:
    """Sample `sample` rows of `training_set.served_table`, read the history of their users and videos (with the
    lateness flags `fyp verify` computes, over each partition's fuller stream), and `compare`."""
    import pyarrow as pa
    from pyiceberg.expressions import And, GreaterThan, In, LessThan, Or

    from fyp.lake.history import engagement_rows, iso_utc, late_flags
    from schemas.tables import ENGAGEMENT_HISTORY
    from udfs.envelope import ENGAGEMENT_COLUMNS

    served = sample_rows(catalog.load_table(training_set.served_table).scan().to_arrow(), sample, seed)
    if not served.num_rows:
        return SkewReport(rows=0, mismatches=0, unexplained=0, by_cause={}, examples=[])
    served_ms = served.column("served_time").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy() // 1000
    table = catalog.load_table(ENGAGEMENT_HISTORY)
    users = set(served.column("user_id").to_pylist())
    videos = set(served.column("video_id").to_pylist())
    # Events at or after the last serve shape no served value (the row's own time is excluded too).
    entities = And(Or(In("user_id", users), In("video_id", videos)),
                   LessThan("event_time", iso_utc(int(served_ms.max()))))
    arrow = table.scan(row_filter=entities,
                       selected_fields=(*ENGAGEMENT_COLUMNS, "kafka_partition", "kafka_offset")).to_arrow()
    found = engagement_rows(arrow)
    allowed = ALLOWED_LATENESS_MS
    oldest = min((row[COLUMN_INDEX["event_time"]] for _, _, row in found), default=int(served_ms.min()))
    since = min(oldest + allowed, int(served_ms.min()))
    stream_rows = table.scan(row_filter=GreaterThan("event_time", iso_utc(since - 1)),
                             selected_fields=("kafka_partition", "kafka_offset", "event_time")).to_arrow()
    stream = engagement_rows(stream_rows)
    by_partition: dict[int, tuple[list[int], list[int]]] = {}
    for p, o, row in stream:
        if p is not None and o is not None:
            by_partition.setdefault(p, ([], []))
            by_partition[p][0].append(o)
            by_partition[p][1].append(row[COLUMN_INDEX["event_time"]])
    arrays = {p: (np.asarray(o, np.int64), np.asarray(t, np.int64)) for p, (o, t) in by_partition.items()}
    flags = late_flags(arrays, [(p, o, row[COLUMN_INDEX["event_time"]]) for p, o, row in found], allowed)
    history = History(rows=[row for _, _, row in found],
                      partitions=np.array([-1 if p is None else p for p, _, _ in found], np.int64),
                      offsets=np.array([-1 if o is None else o for _, o, _ in found], np.int64),
                      late=np.asarray(flags, dtype=bool))
    arrivals = History(rows=[row for _, _, row in stream],
                       partitions=np.array([-1 if p is None else p for p, _, _ in stream], np.int64),
                       offsets=np.array([-1 if o is None else o for _, o, _ in stream], np.int64))
    return compare(training_set, served, history, arrivals=arrivals, in_flight_bound_ms=in_flight_bound_ms,
                   partition_bounds_ms=partition_bounds_ms, dedup_subtasks=dedup_subtasks,
                   request_bounds_ms=request_bounds_ms)
