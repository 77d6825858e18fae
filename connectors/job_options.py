"""Per-run options a job accepts on its command line (after `flink run -py jobs/x.py`), e.g. for benchmarks."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["JobOptions", "parse_job_options"]


@dataclass(frozen=True, kw_only=True)
class JobOptions:
    """topic: read this topic instead of the job's own (benchmarks). group_id: Kafka consumer group (default:
    the job's own). start_offsets / end_offsets: partition -> offset to start at and to stop before (a bounded
    run that finishes), as `0:120,1:98`. per_set_sql: the features job computes every set with its own SQL
    GROUP BY, none through the key-family operators (featurespec/families.py): the reference path, for
    comparisons (`fyp bench throughput --per-set-sql`)."""

    topic: str | None = None
    group_id: str | None = None
    only_feature_sets: tuple[str, ...] | None = None  # compute just these (by name), and no serving sets
    start_offsets: dict[int, int] | None = None
    end_offsets: dict[int, int] | None = None
    per_set_sql: bool = False


def _offsets(text: str) -> dict[int, int]:
    try:
        return {int(p): int(o) for p, o in (item.split(":") for item in text.split(",") if item)}
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"offsets look like 0:120,1:98, got {text!r}") from exc


def parse_job_options(argv: Sequence[str]) -> JobOptions:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--topic")
    parser.add_argument("--group-id")
    parser.add_argument("--start-offsets", type=_offsets)
    parser.add_argument("--end-offsets", type=_offsets)
    parser.add_argument("--only-feature-sets", type=lambda text: tuple(n for n in text.split(",") if n))
    parser.add_argument("--per-set-sql", action="store_true")
    known, _ = parser.parse_known_args(list(argv))
    return JobOptions(topic=known.topic, group_id=known.group_id, start_offsets=known.start_offsets,
                      end_offsets=known.end_offsets, only_feature_sets=known.only_feature_sets,
                      per_set_sql=known.per_set_sql)
