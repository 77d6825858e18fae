"""The figures of `fyp bench throughput` from its rounds: medians per contestant and the ratios of medians."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["CLOCKS", "METRICS", "summarize"]

# Each metric with the decimals its median keeps: rates to 0.1 event, spans and CPU to the millisecond.
METRICS = {"events_per_s": 1, "events_per_cpu_s": 1, "first_to_last_s": 3, "submit_to_last_s": 3, "cpu_seconds": 3}

# What each span and CPU figure measures, printed with the results so that a reader of the JSON knows.
CLOCKS = {
    "flink": "first_to_last_s: the source subtasks going RUNNING (Flink REST subtask times, ~ the first record "
             "read) to the job's end-time (its Redis writers flush before the tasks finish, so ~ the last write); "
             "submit_to_last_s: from just before `flink run` to the same end. cpu_seconds: utime+stime of every "
             "TaskManager JVM (/proc/<pid>/stat, sampled every 0.2 s) over first_to_last_s.",
    "peers": "first_to_last_s: the first record consumed to the end of the last Redis write; submit_to_last_s: "
             "from the peer being started (before its imports and consumer group join) to the same write. "
             "cpu_seconds: the peer process (all threads) over first_to_last_s.",
    "rates": "events_per_s = events / first_to_last_s; events_per_cpu_s = events / cpu_seconds. Kafka, Redis "
             "and the JobManager are counted for no contestant.",
}


def _median(values: Sequence[float | None], digits: int) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), digits) if present else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 2) if numerator and denominator else None


def summarize(rounds: Sequence[dict], peers: Sequence[str], *, per_set_sql: bool = False) -> dict:
    """Figures from `rounds`, each {"round", "load_1m_start", "load_1m_end", and per contestant ("all_sets",
    with peers also "video_only" and each peer) a dict of METRICS and "redis_snapshots"}.

    The result keeps the earlier keys (events_per_s and flink_seconds of all sets, `runs` of events/s per
    contestant, video_only_events_per_s, <peer>_events_per_s, flink_vs_<peer>) and adds `medians` (every
    metric per contestant, rounds without the metric skipped), events_per_cpu_s per contestant,
    flink_vs_<peer>_per_cpu (video only against the peer, events per CPU-second), `rounds` and `clocks`.
    per_set_sql: the rounds also ran "all_sets_per_set_sql" (every set through its own SQL GROUP BY, no key-family
    operator); `families_vs_per_set_sql` and `families_vs_per_set_sql_per_cpu` compare the two all-sets jobs.
    """
    names = ["all_sets", *(["all_sets_per_set_sql"] if per_set_sql else []),
             *(["video_only", *peers] if peers else [])]
    medians = {name: {metric: _median([r[name].get(metric) for r in rounds], digits)
                      for metric, digits in METRICS.items()} for name in names}
    data: dict = {
        "events_per_s": medians["all_sets"]["events_per_s"],
        "events_per_cpu_s": medians["all_sets"]["events_per_cpu_s"],
        "flink_seconds": medians["all_sets"]["first_to_last_s"],
        "repeat": len(rounds),
        "runs": {name: [r[name]["events_per_s"] for r in rounds] for name in names},
        "redis_snapshots": {name: [r[name].get("redis_snapshots", 0) for r in rounds] for name in names},
    }
    if per_set_sql:
        reference = medians["all_sets_per_set_sql"]
        data["families_vs_per_set_sql"] = _ratio(data["events_per_s"], reference["events_per_s"])
        data["families_vs_per_set_sql_per_cpu"] = _ratio(data["events_per_cpu_s"], reference["events_per_cpu_s"])
    if peers:
        video = medians["video_only"]
        data["video_only_events_per_s"] = video["events_per_s"]
        data["video_only_events_per_cpu_s"] = video["events_per_cpu_s"]
        for name in peers:
            data[f"{name}_events_per_s"] = medians[name]["events_per_s"]
            data[f"{name}_events_per_cpu_s"] = medians[name]["events_per_cpu_s"]
            data[f"flink_vs_{name}"] = _ratio(video["events_per_s"], medians[name]["events_per_s"])
            data[f"flink_vs_{name}_per_cpu"] = _ratio(video["events_per_cpu_s"], medians[name]["events_per_cpu_s"])
    data["medians"] = medians
    data["rounds"] = list(rounds)
    data["clocks"] = CLOCKS
    return data
