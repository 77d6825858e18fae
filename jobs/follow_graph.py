"""Follow graph: FOLLOW / UNFOLLOW engagement events -> who follows whom, in Redis and Iceberg.

Source: fyp.engagement.v1 (raw Avro), decoded by the Java DECODE_ENGAGEMENT without an allowed lateness (a follow
is kept however late it arrives; malformed records are left to the features job, which dead-letters them).
Steps (udfs/follow_graph.py): the follow events; the latest event per (user, author), last writer by event time
(one number per pair in keyed state, kept without a TTL); per author, the count of pairs that follow. Sinks: each user's
followed authors as a sorted set and each author's follower count as a hash, both absolute values from state
with no TTL (features/follow_graph.py, docs/REDIS_LAYOUT.md); every follow event appended to
graph.follows_changelog, committed on checkpoints (`fyp sql` reads the current edges as graph.follows).

Parallelism 1 unless `-p` says otherwise (the catalogue's default, fyp/pipelines.py): the local TaskManager's 8 slots
are shared by every job (docs/OPERATIONS.md). Flags: the Kafka source options of connectors/job_options.py
(`KAFKA_SOURCE_OPTIONS`: `--group-id`, `--start-offsets`, ...); the features job's others are refused.
"""

from __future__ import annotations

import sys
from datetime import timedelta

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from connectors.iceberg_catalog import register_iceberg_catalog
from connectors.job_options import KAFKA_SOURCE_OPTIONS, JobOptions, parse_job_options
from connectors.kafka_source import kafka_raw_source
from connectors.redis_feature_sink import redis_count_sink, redis_sorted_set_sink
from features.follow_graph import FOLLOWERS_FIELD, FOLLOWERS_KEY_PREFIX, FOLLOWING_KEY_PREFIX, FOLLOWING_MAX_SIZE
from fyp.config import Settings, load_settings
from fyp.pipelines import FOLLOW_GRAPH_JOB as PIPELINE
from schemas.tables import FOLLOWS_CHANGELOG
from schemas.topics import ENGAGEMENT
from udfs.envelope import ENGAGEMENT_COLUMNS
from udfs.flink_functions import register_java_decoder
from udfs.follow_graph import (
    changelog_query,
    current_edges_query,
    follow_events_query,
    followers_query,
    following_query,
)

__all__ = ["JOB_CONFIG", "build_follow_graph", "follow_graph_views"]

# No table.exec.state.ttl: an edge's state is its only memory of the edge (docs/REDIS_LAYOUT.md, "The follow graph").
# No parallelism here: set in the program it would override `flink run -p` and `fyp rescale`; the catalogue's
# default (fyp/pipelines.py) is what a submission without -p runs at.
JOB_CONFIG: dict[str, str] = PIPELINE.flink_config()
NO_TTL = timedelta(0)


def follow_graph_views(t_env: TableEnvironment, raw_table: str) -> None:
    """Views over a raw payload table (payload, kafka_partition, kafka_offset): `follow_events`, `follow_edges`
    (latest event per pair), `following` (the sorted-set rows) and `followers` (the count per author)."""
    java_decoder = register_java_decoder(t_env)
    columns = ", ".join(f"e.`{n}` AS `{n}`" for n in ENGAGEMENT_COLUMNS)
    t_env.create_temporary_view("follow_decoded", t_env.sql_query(
        f"SELECT {columns}, kafka_partition, kafka_offset FROM ("
        f"SELECT {java_decoder}(payload) AS e, kafka_partition, kafka_offset FROM `{raw_table}`) "
        "WHERE e.error IS NULL"))
    t_env.create_temporary_view("follow_events", t_env.sql_query(follow_events_query("follow_decoded")))
    t_env.create_temporary_view("follow_edges", t_env.sql_query(current_edges_query("follow_events")))
    t_env.create_temporary_view("following", t_env.sql_query(following_query("follow_edges")))
    t_env.create_temporary_view("followers", t_env.sql_query(followers_query("follow_edges")))


def build_follow_graph(t_env: TableEnvironment, settings: Settings, *,
                       options: JobOptions | None = None) -> StatementSet:
    # Source: raw payloads with their Kafka coordinates.
    t_env.create_temporary_table("engagement_raw", kafka_raw_source(
        settings, topic=ENGAGEMENT.name, group_id=PIPELINE.group_id, options=options))
    catalog = register_iceberg_catalog(t_env, settings)

    # Steps: decode, keep follow events, latest event per pair, follower counts.
    follow_graph_views(t_env, "engagement_raw")

    # Sinks: the sorted sets (NULL score = ZREM) capped at the follow limit, the counts, the Iceberg changelog.
    t_env.create_temporary_table("following_redis", redis_sorted_set_sink(
        settings, key_prefix=FOLLOWING_KEY_PREFIX, key_columns=("user_id",), member_column="author_id",
        score_column="followed_at", max_size=FOLLOWING_MAX_SIZE, ttl=NO_TTL))
    t_env.create_temporary_table("followers_redis", redis_count_sink(
        settings, key_prefix=FOLLOWERS_KEY_PREFIX, key_column="author_id", count_column=FOLLOWERS_FIELD,
        event_time_column="event_time", ttl=NO_TTL))
    statements = t_env.create_statement_set()
    statements.add_insert_sql("INSERT INTO following_redis SELECT user_id, author_id, followed_at FROM following")
    statements.add_insert_sql(
        f"INSERT INTO followers_redis SELECT author_id, followers AS `{FOLLOWERS_FIELD}`, event_time FROM followers")
    statements.add_insert_sql(
        f"INSERT INTO `{catalog}`.{FOLLOWS_CHANGELOG} {changelog_query('follow_events')}")
    return statements


if __name__ == "__main__":
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in JOB_CONFIG.items():
        env.get_config().set(key, value)
    job_options = parse_job_options(sys.argv[1:], job="follow_graph", honoured=KAFKA_SOURCE_OPTIONS)
    build_follow_graph(env, load_settings(), options=job_options).execute()
