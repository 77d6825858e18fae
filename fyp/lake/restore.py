"""Refill Redis from the Iceberg history after Redis lost its data (an empty restart, a wiped replica).

The features job writes a key only when its entity changes, so after an empty restart every idle entity stays
missing until its next event. `fyp features-restore` rebuilds each feature set's live keys from the history with
the reference evaluator (the one `fyp verify` checks the job against), applying the job's own admission rules:
Kafka order per partition, keep-first deduplication on event_id, the per-partition lateness rule
(udfs/lateness.py, replayed without the wall-clock cap the job applies, as `fyp verify` does).

Only keys Redis does not hold are written (SET NX), so a value the running job wrote since the restart, which also
reflects its state, is never replaced by a recomputation. Each key gets the TTL it would have had: the set's ttl
counted from the entity's newest event. Rows older than the set's ttl plus its longest window cannot shape a live
key and are not read.

The same fills a new version of a set (`fyp features-restore --set NAME.v2`, `restore_feature_set` takes one
`FeatureSet`) before readers switch to it: the job writes a new version's keys only as its entities change.

Chosen over a savepoint read with Flink's State Processor API because the history is already the verified
source of truth, the restore needs no job to be stopped, and the same evaluator proves its values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from features import ALLOWED_LATENESS
from featurespec import FeatureSet
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.sql import read_columns
from fyp.lake.history import engagement_rows, iso_utc
from udfs.lateness import LatenessGate

__all__ = ["RestoreResult", "restore_feature_set"]

_EVENT_ID, _EVENT_TIME = 1, 2  # positions in the engagement row (udfs/envelope.ENGAGEMENT_ROW_FIELDS)
_WRITE_BATCH = 5_000


@dataclass(frozen=True, kw_only=True)
class RestoreResult:
    feature_set: str
    history_rows: int
    entities: int
    written: int  # keys Redis lacked, now set
    kept: int  # keys Redis already held (left as they are)
    expired: int  # entities whose newest event is older than the set's ttl: nothing to restore
    seconds: float

    @property
    def keys_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def restore_feature_set(
    feature_set: FeatureSet, table: Any, redis_client: Any, *, now_ms: int,
    progress: Callable[[str, int], None] | None = None,
) -> RestoreResult:
    """Recompute every live entity of `feature_set` from `table` (the engagement history) and SET NX its key.

    progress: called with (stage, count) as rows are read and keys written.
    Raises featurespec.reference.sql.SqlTranslationError for a set the evaluator cannot compute (a derived column the
    job computes with a Python function).
    """
    from pyiceberg.expressions import GreaterThanOrEqual

    started = time.monotonic()
    evaluator = FeatureEvaluator.of(feature_set)
    ttl_ms = int(feature_set.ttl.total_seconds() * 1000)
    horizon_ms = ttl_ms + int(max(feature_set.windows, default=feature_set.ttl).total_seconds() * 1000)
    columns = tuple(dict.fromkeys(("event_id", "event_time", *read_columns(feature_set))))
    arrow = table.scan(row_filter=GreaterThanOrEqual("event_time", iso_utc(now_ms - horizon_ms)),
                       selected_fields=(*columns, "kafka_partition", "kafka_offset")).to_arrow()
    arrow = arrow.sort_by([("kafka_partition", "ascending"), ("kafka_offset", "ascending")])

    states: dict[str, Any] = {}
    seen: set[str] = set()
    gate = LatenessGate(int(ALLOWED_LATENESS.total_seconds() * 1000))
    rows = 0
    for batch in arrow.to_batches(max_chunksize=50_000):
        for partition, _offset, row in engagement_rows(batch):
            rows += 1
            if row[_EVENT_ID] in seen:
                continue
            seen.add(row[_EVENT_ID])
            if not gate.admit(partition, row[_EVENT_TIME]):
                continue
            for key in evaluator.keys(row):
                state = states.get(key)
                if state is None:
                    state = states[key] = evaluator.new_state()
                evaluator.update(state, row)
        if progress:
            progress("rows", rows)

    written = kept = expired = 0
    pending: list[tuple[str, bytes, int]] = []

    def flush() -> None:
        nonlocal written, kept
        pipe = redis_client.pipeline(transaction=False)
        for key, value, ttl_left in pending:
            pipe.set(key, value, px=ttl_left, nx=True)
        for ok in pipe.execute():
            written += bool(ok)
            kept += not ok
        pending.clear()
        if progress:
            progress("keys", written + kept)

    for entity_id, state in states.items():
        ttl_left = ttl_ms - (now_ms - evaluator.event_time(state))
        if ttl_left <= 0:
            expired += 1
            continue
        pending.append((feature_set.key_prefix + entity_id, evaluator.pack(state, update_time_ms=now_ms), ttl_left))
        if len(pending) >= _WRITE_BATCH:
            flush()
    if pending:
        flush()
    return RestoreResult(feature_set=feature_set.qualified_name, history_rows=rows, entities=len(states),
                         written=written, kept=kept, expired=expired, seconds=round(time.monotonic() - started, 3))
