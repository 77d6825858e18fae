"""`fyp bench feed`: feed latency and throughput against a running feed service, at several client counts.

Each level runs `clients` threads, each asking for feeds back to back (a closed loop) for `duration_s`, for users
drawn round-robin from `users`. Per level: p50/p95/p99 of the whole request as the client sees it, feeds per
second, and per stage the p50 and p99 of the service's own `timings_ms`. The issue's targets: p99 <= 50 ms with
one client, >= 100 feeds/s. The load average is reported beside the figures: on a shared machine they are smoke
figures, not capacity.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fyp.bench.stats import latency_summary

__all__ = ["TARGET_FEEDS_PER_S", "TARGET_P99_MS", "run_feed_bench"]

TARGET_P99_MS = 50.0
TARGET_FEEDS_PER_S = 100.0

FeedCall = Callable[[str], Mapping[str, Any]]  # user -> the /v1/feed body


def _level(call: FeedCall, users: Sequence[str], clients: int, duration_s: float) -> dict[str, Any]:
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + duration_s

    def worker(offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            user = users[i % len(users)]
            i += clients
            started = time.perf_counter()
            try:
                body = call(user)
            except Exception as exc:  # counted and reported: a benchmark that stops at one error says little
                with lock:
                    errors.append(str(exc)[:200])
                continue
            took = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(took)
                for stage, ms in body.get("timings_ms", {}).items():
                    stages.setdefault(stage, []).append(float(ms))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    by_stage = {stage: {k: v for k, v in latency_summary(ms).items() if k in ("p50_ms", "p99_ms")}
                for stage, ms in stages.items()}
    return {"clients": clients, "seconds": round(elapsed, 2), "feeds": len(latencies),
            "feeds_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
            **latency_summary(latencies), "stages": by_stage, "errors": len(errors),
            **({"first_error": errors[0]} if errors else {})}


def run_feed_bench(call: FeedCall, users: Sequence[str], *, levels: Sequence[int] = (1, 4, 16),
                   duration_s: float = 5.0, warmup: int = 5) -> dict[str, Any]:
    """Every level in turn (after `warmup` untimed feeds); the result as one JSON-ready dict."""
    if not users:
        raise ValueError("no users to ask feeds for")
    for i in range(warmup):
        call(users[i % len(users)])
    load_before = os.getloadavg()
    results = [_level(call, users, clients, duration_s) for clients in levels]
    one = next((r for r in results if r["clients"] == 1), None)
    return {
        "users": len(users),
        "levels": results,
        "targets": {"p99_ms_at_1_client": TARGET_P99_MS, "feeds_per_s": TARGET_FEEDS_PER_S,
                    "p99_met": None if one is None else one["p99_ms"] <= TARGET_P99_MS,
                    "throughput_met": max(r["feeds_per_s"] for r in results) >= TARGET_FEEDS_PER_S},
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()},
    }
