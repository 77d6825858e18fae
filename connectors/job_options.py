"""Per-run options a job accepts on its command line (after `flink run -py jobs/x.py`), e.g. for benchmarks."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ALL_OPTIONS", "BUFFER_TIMEOUT_MS_RANGE", "KAFKA_SOURCE_OPTIONS", "MINI_BATCH_MS_RANGE", "JobOptions",
           "parse_job_options"]


@dataclass(frozen=True, kw_only=True)
class JobOptions:
    """topic: read this topic instead of the job's own (benchmarks). group_id: Kafka consumer group (default:
    the job's own). start_offsets / end_offsets: partition -> offset to start at and to stop before (a bounded
    run that finishes), as `0:120,1:98`. per_set_sql: the features job computes every set with its own SQL
    GROUP BY, none through the key-family operators (featurespec/families.py): the reference path, for
    comparisons (`fyp bench throughput --per-set-sql`).

    mini_batch_ms and buffer_timeout_ms trade freshness against CPU (docs/PERFORMANCE.md, "2026-12-07:
    freshness"). mini_batch_ms: how long the features job gathers rows before applying them to state (the SQL
    mini-batch's allow-latency, which the key-family operators follow); shorter is fresher (an event waits up to
    this long) but reads and writes state and Redis more often per event when keys repeat. buffer_timeout_ms:
    the longest a row waits in a network buffer before a shuffle sends it (Flink's
    execution.buffer-timeout.interval, 100 ms by default); each job task's flusher thread wakes this often, so
    shorter is fresher but costs CPU even when no events arrive."""

    topic: str | None = None
    group_id: str | None = None
    only_feature_sets: tuple[str, ...] | None = None  # compute just these (by name), and no serving sets
    start_offsets: dict[int, int] | None = None
    end_offsets: dict[int, int] | None = None
    per_set_sql: bool = False
    mini_batch_ms: int = 200
    buffer_timeout_ms: int = 100  # Flink's own default: 20 ms cost more CPU and was no fresher (PERFORMANCE.md)

    def __post_init__(self) -> None:
        for name, (low, high) in (("mini_batch_ms", MINI_BATCH_MS_RANGE),
                                  ("buffer_timeout_ms", BUFFER_TIMEOUT_MS_RANGE)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be within {low}..{high} ms, got {value}")


# Below 10 ms a mini-batch holds too few rows to save state accesses; above 10 s features go stale. A buffer
# timeout of 0 would flush after every row (Flink's flushAlways), far too costly at throughput.
MINI_BATCH_MS_RANGE = (10, 10_000)
BUFFER_TIMEOUT_MS_RANGE = (1, 1_000)


def _millis(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected whole milliseconds, got {text!r}") from exc
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low}..{high} ms, got {value}")
        return value
    return parse


def _offsets(text: str) -> dict[int, int]:
    try:
        return {int(p): int(o) for p, o in (item.split(":") for item in text.split(",") if item)}
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"offsets look like 0:120,1:98, got {text!r}") from exc


# The flags a job that reads Kafka through connectors/kafka_source.py honours; only the features job reads the rest.
KAFKA_SOURCE_OPTIONS = ("--topic", "--group-id", "--start-offsets", "--end-offsets")
ALL_OPTIONS = (*KAFKA_SOURCE_OPTIONS, "--only-feature-sets", "--per-set-sql", "--mini-batch-ms", "--buffer-timeout-ms")


def parse_job_options(argv: Sequence[str], *, job: str = "this job",
                      honoured: Sequence[str] = ALL_OPTIONS) -> JobOptions:
    """The options in `argv` (other arguments are left to the job). A flag of ALL_OPTIONS the job does not honour
    is a ValueError naming what it takes: accepted and ignored, it would seem to change something it does not."""
    ignored = [flag for flag in ALL_OPTIONS if flag not in honoured
               and any(arg == flag or arg.startswith(f"{flag}=") for arg in argv)]
    if ignored:
        raise ValueError(f"{', '.join(ignored)}: not an option of {job}, which takes "
                         f"{', '.join(honoured) or 'none of the job options'}")
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--topic")
    parser.add_argument("--group-id")
    parser.add_argument("--start-offsets", type=_offsets)
    parser.add_argument("--end-offsets", type=_offsets)
    parser.add_argument("--only-feature-sets", type=lambda text: tuple(n for n in text.split(",") if n))
    parser.add_argument("--per-set-sql", action="store_true")
    parser.add_argument("--mini-batch-ms", type=_millis(*MINI_BATCH_MS_RANGE), default=JobOptions.mini_batch_ms)
    parser.add_argument("--buffer-timeout-ms", type=_millis(*BUFFER_TIMEOUT_MS_RANGE),
                        default=JobOptions.buffer_timeout_ms)
    known, _ = parser.parse_known_args(list(argv))
    return JobOptions(topic=known.topic, group_id=known.group_id, start_offsets=known.start_offsets,
                      end_offsets=known.end_offsets, only_feature_sets=known.only_feature_sets,
                      per_set_sql=known.per_set_sql, mini_batch_ms=known.mini_batch_ms,
                      buffer_timeout_ms=known.buffer_timeout_ms)
