"""`fyp serve requests`: ranking reads as a feed would make them, with served-feature logging on.

There is no feed service yet: this drives `FeatureClient.for_request` for active users (those with a recent-seen
set in Redis) and candidates (videos with features in Redis), each request read twice, by a client that logs
(fyp/serving/served_log.py) and by one that does not, in alternating order, so the two latency distributions
show what logging adds to a read. The logged reads reach fyp.served-features.v1, which jobs/served_training.py
joins with the labels that follow.
"""

from __future__ import annotations

import random
import time
from typing import Any

import typer
from rich.table import Table

from fyp.commands.output import console, fail_cleanly, print_json

__all__ = ["register", "scan_ids"]


def scan_ids(client: Any, prefix: str, limit: int) -> list[str]:
    """Up to `limit` entity ids whose keys start with `prefix` (one SCAN pass, stopping once it has enough)."""
    found: list[str] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1_000):
        found.append((key.decode() if isinstance(key, bytes) else key)[len(prefix):])
        if len(found) >= limit:
            break
    return found


def serve_requests(
    users: int = typer.Option(100, "--users", min=1, help="Active users to draw requests for (recent-seen sets)."),
    candidates: int = typer.Option(500, "--candidates", min=1, help="Candidate videos per request."),
    duration: float = typer.Option(10.0, "--duration", min=0.1, help="Seconds to run."),
    log_sample: float | None = typer.Option(None, "--log-sample", min=0.0, max=1.0,
                                            help="Share of requests logged (default FYP_SERVED_LOG_SAMPLE_RATE)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the user and candidate draws."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Ranking reads (FeatureClient.for_request) with served-feature logging; requests/s and read latency with
    and without logging."""
    import redis

    from features import feature_set_for_entity
    from fyp.bench.stats import latency_summary
    from fyp.config import load_settings
    from fyp.serving import FeatureClient
    from fyp.serving.client import RECENT_SEEN_PREFIX
    from fyp.serving.served_log import ServedLog

    settings = load_settings()
    rate = settings.served_log_sample_rate if log_sample is None else log_sample
    with fail_cleanly(ValueError, redis.RedisError):
        scanner = settings.redis_client()
        user_ids = scan_ids(scanner, RECENT_SEEN_PREFIX, users)
        video_ids = scan_ids(scanner, feature_set_for_entity("video").key_prefix, max(candidates, 2_000))
        if not user_ids or not video_ids:
            raise ValueError("Redis holds no active users or no video features: produce traffic "
                             "(`fyp produce`) with the features job running (`fyp submit engagement_features`)")
        plain = FeatureClient.from_settings(settings)
        served_log = ServedLog.from_settings(settings, sample_rate=rate)
        logged = FeatureClient.from_settings(settings, served_log=served_log)
        rng = random.Random(seed)
        with_log: list[float] = []
        without_log: list[float] = []
        started = time.perf_counter()
        while time.perf_counter() - started < duration:
            user, batch = rng.choice(user_ids), rng.sample(video_ids, min(candidates, len(video_ids)))
            # Alternate which client reads first, so neither always finds the other's keys in Redis's cache.
            order = ((logged, with_log), (plain, without_log))
            for client, samples in order if len(with_log) % 2 else order[::-1]:
                t0 = time.perf_counter()
                client.for_request(user, batch)
                samples.append((time.perf_counter() - t0) * 1000)
        seconds = time.perf_counter() - started
        stats = served_log.close()
    result = {
        "users": len(user_ids), "candidates": min(candidates, len(video_ids)), "sample_rate": rate,
        "requests": len(with_log), "seconds": round(seconds, 3),
        "requests_per_s": round((len(with_log) + len(without_log)) / seconds, 1),
        "latency_ms": {"with_log": latency_summary(with_log), "without_log": latency_summary(without_log)},
        "served_log": {"sampled": stats.sampled, "logged": stats.logged, "dropped": stats.dropped,
                       "failed": stats.failed, "last_error": stats.last_error},
    }
    if as_json:
        print_json(result)
    else:
        table = Table("reads", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms",
                      title=f"{result['requests']:,} requests of 1 user + {result['candidates']} videos, "
                            f"{result['requests_per_s']:,.0f} reads/s")
        for name, summary in result["latency_ms"].items():
            table.add_row(name.replace("_", " "), f"{summary['samples']:,}", *(
                f"{summary[k]:.3f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")))
        console.print(table)
        console.print("served log: " + ", ".join(f"{k} {v}" for k, v in result["served_log"].items()
                                                   if v is not None) + f" (sample rate {rate:g})")
    if stats.failed:
        raise typer.Exit(1)


def register(app: typer.Typer, *, serve: typer.Typer) -> None:
    """Add `requests` to the `serve` group (declared in fyp/cli.py)."""
    serve.command("requests")(serve_requests)
