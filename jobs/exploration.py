"""Exploration bucket: engagement events -> at most one promote/demote decision per new video, to Kafka.

Source: fyp.engagement.v1 (raw Avro). Steps: decode (Java DECODE_ENGAGEMENT, as the features job; malformed
and late rows are dropped here, the features job dead-letters and counts them), running per-video counters (a
Java OVER aggregation, one row out per row in), the decision rule as SQL (udfs/exploration.py), keep-first
deduplication per video (the keyed "decided" state). Sinks: ExplorationDecision records on fyp.exploration.v1,
keyed by video_id; Python only encodes the (rare) decisions, so none runs per event. And the same decisions in
Redis, one sorted set per decision (features/exploration.py), which candidate generation reads to drop demoted
videos from the exploration pool and rank promoted ones first.

Flags (after `flink run -py jobs/exploration.py`, or `fyp submit exploration -- ...`): the policy's
`--max-age 24h --min-impressions 100 --promote-completion-rate 0.5 --promote-like-rate 0.04
--demote-completion-rate 0.25 --demote-like-rate 0.01 --state-ttl 7d`, and connectors/job_options.py's Kafka source
options (`KAFKA_SOURCE_OPTIONS`; the features job's others are refused).
"""

from __future__ import annotations

import sys

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from connectors.job_options import KAFKA_SOURCE_OPTIONS, JobOptions, parse_job_options
from connectors.kafka_sink import kafka_raw_sink
from connectors.kafka_source import kafka_raw_source
from connectors.redis_feature_sink import redis_sorted_set_sink
from features import ALLOWED_LATENESS
from features.exploration import DECISIONS_KEY_PREFIX, DECISIONS_MAX_SIZE, DECISIONS_TTL, EXPLORATION_COUNTERS
from featurespec.sql import counters_query
from fyp.config import Settings, load_settings
from fyp.pipelines import EXPLORATION_JOB as PIPELINE
from schemas.topics import ENGAGEMENT, EXPLORATION
from udfs.envelope import ENGAGEMENT_COLUMNS
from udfs.exploration import ExplorationPolicy, decisions_query, parse_policy
from udfs.flink_functions import encode_exploration_decision, register_java_decoder

__all__ = ["GROUP_ID", "build_exploration", "exploration_views", "job_config"]

GROUP_ID = PIPELINE.group_id


def job_config(policy: ExplorationPolicy) -> dict[str, str]:
    # No mini-batch: it would make the keep-first deduplication look updating, and a Kafka topic takes
    # appends only. The job-wide TTL bounds the per-video counters and decided flags.
    return {**PIPELINE.flink_config(),  # its name, and pipeline.max-parallelism so that it can rescale
            "table.exec.state.ttl": f"{int(policy.state_ttl.total_seconds())} s"}


def exploration_views(t_env: TableEnvironment, raw_table: str, policy: ExplorationPolicy) -> None:
    """Views over a raw payload table (payload, kafka_partition, proc_time): `engagement` (good, on-time rows),
    `counters` (running totals per video) and `decisions` (each decided video once)."""
    java_decoder = register_java_decoder(t_env)
    t_env.create_temporary_function("encode_exploration_decision", encode_exploration_decision)
    lateness_ms = int(ALLOWED_LATENESS.total_seconds() * 1000)
    names = ENGAGEMENT_COLUMNS
    t_env.create_temporary_view("engagement", t_env.sql_query(
        f"SELECT {', '.join(f'e.`{n}` AS `{n}`' for n in names)}, proc_time FROM ("
        f"SELECT {java_decoder}(payload, CAST({lateness_ms} AS BIGINT), kafka_partition) AS e, proc_time "
        f"FROM `{raw_table}`) "
        "WHERE e.error IS NULL"))
    t_env.create_temporary_view("counters", t_env.sql_query(counters_query("engagement", EXPLORATION_COUNTERS)))
    t_env.create_temporary_view("decisions", t_env.sql_query(decisions_query("counters", policy)))


def build_exploration(t_env: TableEnvironment, settings: Settings, policy: ExplorationPolicy, *,
                      options: JobOptions | None = None) -> StatementSet:
    # Source: raw payloads, with a processing-time attribute.
    t_env.create_temporary_table("engagement_raw", kafka_raw_source(
        settings, topic=ENGAGEMENT.name, group_id=GROUP_ID, options=options))

    # Steps: decode, count per video, decide, keep each video's first decision.
    exploration_views(t_env, "engagement_raw", policy)

    # Sinks: one ExplorationDecision per decided video; the same decision into its Redis sorted set (an absolute
    # ZADD of a value decided once, so a replay writes the same).
    t_env.create_temporary_table("exploration_decisions", kafka_raw_sink(settings, topic=EXPLORATION.name))
    t_env.create_temporary_table("exploration_redis", redis_sorted_set_sink(
        settings, key_prefix=DECISIONS_KEY_PREFIX, key_columns=("decision",), member_column="video_id",
        score_column="decided_at", max_size=DECISIONS_MAX_SIZE, ttl=DECISIONS_TTL))
    statements = t_env.create_statement_set()
    statements.add_insert_sql(
        "INSERT INTO exploration_decisions SELECT CAST(video_id AS BYTES), encode_exploration_decision("
        "video_id, author_id, decision, event_time, impressions, completion_rate, like_rate) FROM decisions")
    statements.add_insert_sql(
        "INSERT INTO exploration_redis SELECT decision, video_id, CAST(event_time AS DOUBLE) FROM decisions")
    return statements


if __name__ == "__main__":
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    job_policy = parse_policy(sys.argv[1:])
    for key, value in job_config(job_policy).items():
        env.get_config().set(key, value)
    job_options = parse_job_options(sys.argv[1:], job="exploration", honoured=KAFKA_SOURCE_OPTIONS)
    build_exploration(env, load_settings(), job_policy, options=job_options).execute()
