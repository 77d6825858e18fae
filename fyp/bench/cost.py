"""`fyp bench cost`: TaskManager CPU of the running stack when no events arrive, and per 1,000 events at a
sustained rate.

CPU is utime + stime of every TaskManager JVM of the stack (fyp.bench.proc_cpu); Kafka, Redis and the
JobManager are not counted, and neither is the load generator. Steps, on the jobs already running:
1. `drain`: the features job catches up with the engagement topic (a marker on every partition in Redis);
2. idle: TaskManager CPU over `idle_s` seconds with nothing produced (the engagement topic's end offsets are
   read before and after: `idle_events_arrived` says whether something else produced meanwhile);
3. warm-up: `warmup_s` seconds at the rate, unmeasured (the JIT compiles on a fresh TaskManager), and a drain;
4. load: `duration_s` seconds at the rate, then a drain, so every event produced is processed inside the
   window; CPU per 1,000 events is given gross and net of the idle CPU over the same window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from fyp.bench.freshness import FEATURES_PIPELINE, drain
from fyp.bench.proc_cpu import load_average_1m, process_cpu_seconds, taskmanager_pids
from fyp.bench.throughput import end_offsets
from fyp.config import Settings
from fyp.stack.process import StackError
from fyp.stack.submit import list_jobs
from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.traffic.producer import ProducePlan, produce
from schemas.topics import ENGAGEMENT

__all__ = ["CostResult", "idle_cost", "per_thousand_events", "run_cost"]


@dataclass(frozen=True, kw_only=True)
class CostResult:
    taskmanagers: int
    jobs_running: list[str]
    idle_s: float
    idle_cpu_s: float
    idle_core_percent: float
    idle_cpu_ms_per_s: float
    idle_events_arrived: int
    rate_requested: float
    rate_held: float
    produced: int
    load_window_s: float
    load_cpu_s: float
    cpu_ms_per_1k_events: float | None
    cpu_ms_per_1k_events_net_of_idle: float | None
    drain_after_load_s: float | None
    load_1m_start: float
    load_1m_end: float


def idle_cost(cpu_s: float, seconds: float) -> tuple[float, float]:
    """(% of one core, CPU-ms per second) for `cpu_s` CPU-seconds over `seconds` of wall time.

    >>> idle_cost(1.5, 30.0)
    (5.0, 50.0)
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    per_s = cpu_s / seconds
    return round(per_s * 100, 2), round(per_s * 1000, 2)


def per_thousand_events(cpu_s: float, events: int, window_s: float, idle_ms_per_s: float
                        ) -> tuple[float | None, float | None]:
    """CPU-ms per 1,000 events, gross and net of `idle_ms_per_s` over the `window_s` they were measured in
    (None for no events).

    >>> per_thousand_events(12.0, 60_000, 70.0, 20.0)
    (200.0, 176.67)
    """
    if events <= 0:
        return None, None
    gross = cpu_s * 1000 / events * 1000
    net = (cpu_s * 1000 - idle_ms_per_s * window_s) / events * 1000
    return round(gross, 2), round(net, 2)


def _produce(settings: Settings, rate: float, seconds: float, seed: int):
    return produce(TrafficGenerator(TrafficConfig(users=100_000, videos=200_000), seed),
                   ProducePlan(rate=rate, duration=timedelta(seconds=seconds)),
                   client_config=settings.kafka_client_config())


def run_cost(
    settings: Settings, *, idle_s: float = 30.0, rate: float = 5_000.0, duration_s: float = 60.0,
    warmup_s: float = 10.0, drain_timeout_s: float = 300.0, on_progress: Callable[[str], None] = lambda _: None,
) -> CostResult:
    jobs = sorted(job.name for job in list_jobs(settings) if job.state == "RUNNING")
    if FEATURES_PIPELINE not in jobs:  # the drains wait for its Redis writes
        raise StackError(f"no {FEATURES_PIPELINE} job is running; submit it first: fyp submit engagement_features")
    pids = taskmanager_pids(settings)
    load_start = load_average_1m()

    def drained(step: str) -> float | None:
        on_progress(f"{step}: waiting for the features job to catch up …")
        return drain(settings, timeout_s=drain_timeout_s)

    if drained("before idle") is None:
        raise StackError(f"the features job did not catch up within {drain_timeout_s:g} s: is it running?")
    on_progress(f"idle: {idle_s:g} s with nothing produced …")
    offsets, cpu, started = end_offsets(settings, ENGAGEMENT.name), process_cpu_seconds(pids), time.monotonic()
    time.sleep(idle_s)
    idle_cpu, idle_wall = process_cpu_seconds(pids) - cpu, time.monotonic() - started
    arrived = sum(end_offsets(settings, ENGAGEMENT.name).values()) - sum(offsets.values())
    core_percent, ms_per_s = idle_cost(idle_cpu, idle_wall)

    if warmup_s > 0:
        on_progress(f"warm-up: {rate:,.0f} events/s for {warmup_s:g} s, unmeasured …")
        _produce(settings, rate, warmup_s, seed=int(time.time()))
        drained("after the warm-up")
    on_progress(f"load: {rate:,.0f} events/s for {duration_s:g} s …")
    cpu, started = process_cpu_seconds(pids), time.monotonic()
    report = _produce(settings, rate, duration_s, seed=int(time.time()) + 1)
    drain_s = drained("after the load")
    load_cpu, window = process_cpu_seconds(pids) - cpu, time.monotonic() - started
    gross, net = per_thousand_events(load_cpu, report.produced, window, ms_per_s)
    return CostResult(
        taskmanagers=len(pids), jobs_running=jobs, idle_s=round(idle_wall, 2), idle_cpu_s=round(idle_cpu, 3),
        idle_core_percent=core_percent, idle_cpu_ms_per_s=ms_per_s, idle_events_arrived=arrived,
        rate_requested=rate, rate_held=round(report.rate, 1), produced=report.produced,
        load_window_s=round(window, 2), load_cpu_s=round(load_cpu, 3), cpu_ms_per_1k_events=gross,
        cpu_ms_per_1k_events_net_of_idle=net, drain_after_load_s=drain_s, load_1m_start=load_start,
        load_1m_end=load_average_1m())
