"""Candidate sets computed from the Iceberg history: co-watch.

`fyp worker candidate-sets` runs `refresh` every few minutes: one scan of the last `lookback` of
history.engagement_events (pushdown on event_time and event_type), then DuckDB over the scan:

- co-watch ("watched X also watched Y"): per user, the last `per_user` videos they engaged with positively
  (a watch of >= 50 %, a loop, like, share or save). Every ordered pair (x, y) of one user's videos counts
  once; strength(x -> y) = users(x, y) / sqrt(users(x) * users(y)) (cosine, so a globally popular y does not
  top every list). Pairs seen by fewer than `min_users` users are dropped; each x keeps its `top` best.

Follows are no longer derived here: a day of history forgot every older follow, so jobs/follow_graph.py keeps
the follow graph in Flink state instead (`fyp:following:v1:{user}`, features/follow_graph.py).

A user's market is no longer computed here: the features job keeps it from the first event on
(features/serving_sets.py USER_MARKET), where this batch knew it only after its next run and forgot it a day later.

Why from the history rather than in the features job: co-watch is a pair count over each user's recent
history. In Flink it would keep every user's last N videos in state and emit O(N) pair updates per event into
per-video top-K state; the batch is one self-join over a day of history every few minutes, and co-watch lists
need not be fresher than that (new videos reach users through ANN and the exploration pool instead).

Each key is replaced whole (DEL + ZADD/SADD + EXPIRE inside MULTI/EXEC): absolute values, with a TTL
of `ttl`, so a video or user the history no longer mentions ages out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from fyp.candidates.sources import COWATCH_KEY
from fyp.serving.cluster_reads import is_cluster

__all__ = ["HistorySetsConfig", "RefreshReport", "compute_sets", "history_query", "refresh", "write_sets"]

POSITIVE = ("watch", "loop", "like", "share", "save")


@dataclass(frozen=True, kw_only=True)
class HistorySetsConfig:
    """lookback: history read per run (default 24 h). per_user: a user's most recent positive videos paired
    (default 30). min_users: users a pair needs (default 2). top: co-watched videos kept per video (default 50).
    ttl: lifetime of every written key (default 2 days)."""

    lookback: timedelta = timedelta(hours=24)
    per_user: int = 30
    min_users: int = 2
    top: int = 50
    ttl: timedelta = timedelta(days=2)

    def __post_init__(self) -> None:
        if self.lookback <= timedelta(0) or self.ttl <= timedelta(0):
            raise ValueError("lookback and ttl must be positive")
        if self.per_user < 2 or self.min_users < 1 or self.top < 1:
            raise ValueError("per_user must be >= 2, min_users and top >= 1")


@dataclass(frozen=True, kw_only=True)
class RefreshReport:
    events: int
    cowatch_videos: int
    cowatch_pairs: int
    query_s: float
    write_s: float


def history_query(since_ms: int) -> str:
    """The one scan of the history table (columns and filters pushed into the Iceberg scan)."""
    since = datetime.fromtimestamp(since_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    types = ", ".join(f"'{t}'" for t in (*POSITIVE, "impression", "skip"))
    return ("SELECT user_id, video_id, author_id, event_type, action, watch_ms, video_duration_ms, "
            "epoch_ms(event_time) AS t FROM history.engagement_events "
            f"WHERE event_time >= TIMESTAMPTZ '{since}+00' AND event_type IN ({types})")


_COWATCH = """
WITH positive AS (
  SELECT user_id, video_id, max(t) AS t FROM events
  WHERE event_type IN ('loop', 'like', 'share', 'save')
     OR (event_type = 'watch' AND video_duration_ms > 0 AND watch_ms * 2 >= video_duration_ms)
  GROUP BY user_id, video_id
), recent AS (
  SELECT user_id, video_id FROM positive QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY t DESC) <= $per_user
), popularity AS (
  SELECT video_id, count(*) AS users FROM recent GROUP BY video_id
), pairs AS (
  SELECT a.video_id AS x, b.video_id AS y, count(*) AS users
  FROM recent a JOIN recent b ON a.user_id = b.user_id AND a.video_id <> b.video_id
  GROUP BY 1, 2 HAVING count(*) >= $min_users
)
SELECT x, y, pairs.users / sqrt(px.users * py.users) AS strength
FROM pairs JOIN popularity px ON px.video_id = x JOIN popularity py ON py.video_id = y
QUALIFY row_number() OVER (PARTITION BY x ORDER BY strength DESC, y) <= $top
ORDER BY x, strength DESC, y
"""


def compute_sets(events: pa.Table, config: HistorySetsConfig) -> dict[str, pa.Table]:
    """co-watch (x, y, strength) from history rows, under the name "cowatch".

    `events` has the columns of `history_query` (t: epoch ms). Pure: DuckDB in memory, nothing else.
    """
    con = duckdb.connect(":memory:")
    try:
        con.register("events", events)
        params = {"per_user": config.per_user, "min_users": config.min_users, "top": config.top}
        return {"cowatch": con.sql(_COWATCH, params=params).to_arrow_table()}
    finally:
        con.close()


def _grouped(table: pa.Table, key: str, value: str, score: str) -> Iterator[tuple[str, list]]:
    """(key, [(value, score)]) runs of a table sorted by key."""
    keys, values = table.column(key).to_pylist(), table.column(value).to_pylist()
    scores = table.column(score).to_pylist()
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            yield keys[start], list(zip(values[start:i], scores[start:i], strict=True))
            start = i


def write_sets(client: Any, sets: dict[str, pa.Table], *, ttl: timedelta, chunk: int = 500) -> None:
    """Replace every key the sets name: DEL + write + EXPIRE, `chunk` keys per MULTI/EXEC, so a reader never
    sees a key deleted but not yet refilled. On a Redis Cluster a MULTI/EXEC must stay in one hash slot: one key
    per transaction there (a round trip each)."""
    ttl_s = int(ttl.total_seconds())
    if is_cluster(client):
        chunk = 1
    pipe = client.pipeline(transaction=True)
    pending = 0

    def flush_if_full(force: bool = False) -> None:
        nonlocal pipe, pending
        if pending and (force or pending >= chunk):
            pipe.execute()
            pipe, pending = client.pipeline(transaction=True), 0

    def replace(key: str, write) -> None:
        nonlocal pending
        pipe.delete(key)
        write(key)
        pipe.expire(key, ttl_s)
        pending += 1
        flush_if_full()

    for x, pairs in _grouped(sets["cowatch"], "x", "y", "strength"):
        replace(COWATCH_KEY.format(video_id=x), lambda k, p=pairs: pipe.zadd(k, {y: float(s) for y, s in p}))
    flush_if_full(force=True)


def refresh(settings: Any, client: Any, config: HistorySetsConfig = HistorySetsConfig(), *,
            now_ms: int | None = None) -> RefreshReport:
    """One run: scan the history, compute the sets, write them to Redis."""
    from connectors.iceberg_tables import catalog
    from fyp.lake.sql import run_query

    now = now_ms or int(time.time() * 1000)
    started = time.monotonic()
    result = run_query(catalog(settings), history_query(now - int(config.lookback.total_seconds() * 1000)))
    sets = compute_sets(result.rows, config)
    query_s = time.monotonic() - started
    write_sets(client, sets, ttl=config.ttl)
    return RefreshReport(
        events=result.rows.num_rows, cowatch_videos=len(set(sets["cowatch"].column("x").to_pylist())),
        cowatch_pairs=sets["cowatch"].num_rows,
        query_s=round(query_s, 3),
        write_s=round(time.monotonic() - started - query_s, 3),
    )
