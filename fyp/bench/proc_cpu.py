"""CPU time of the stack's TaskManagers and the machine's load, read from /proc, for the benchmarks.

A TaskManager's CPU is utime + stime of its JVM in `/proc/<pid>/stat` (all its threads; the job's Python
functions run inside the JVM in thread mode, so they count too; the Python workers of a job in process mode
are child processes, not counted). The pids come from the stack's pid files
(`fyp.stack.flink_cluster.taskmanager_services`: one TaskManager, or several in the cluster profile).
Kafka, Redis and the JobManager are not counted.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from fyp.config import Settings
from fyp.stack.process import StackError

__all__ = ["CpuSampler", "cpu_between", "load_average_1m", "parse_loadavg", "parse_stat_cpu_ticks",
           "process_cpu_seconds", "taskmanager_pids"]

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def parse_stat_cpu_ticks(stat: str) -> int:
    """utime + stime (clock ticks) from the text of `/proc/<pid>/stat`.

    The command name (field 2) is in parentheses and may hold spaces or ')', so fields are counted after the
    last ')': state is then field 0, utime field 11 and stime field 12.

    >>> parse_stat_cpu_ticks("42 (java) S 1 42 42 0 -1 4194560 9 0 0 0 150 25 0 0 20 0 60 0")
    175
    """
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def parse_loadavg(text: str) -> float:
    """The 1-minute load average from the text of `/proc/loadavg`.

    >>> parse_loadavg("2.96 3.69 4.01 3/812 12345")
    2.96
    """
    return float(text.split()[0])


def load_average_1m() -> float:
    return parse_loadavg(Path("/proc/loadavg").read_text())


def process_cpu_seconds(pids: Sequence[int]) -> float:
    """CPU-seconds (user + system) the processes `pids` have used so far, summed."""
    try:
        return sum(parse_stat_cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) for pid in pids) / TICKS_PER_S
    except FileNotFoundError as exc:
        raise StackError(f"a TaskManager exited during the measurement ({exc.filename})") from None


def taskmanager_pids(settings: Settings) -> list[int]:
    """The pids of this stack's running TaskManagers (every one of them in the cluster profile)."""
    from fyp.stack.flink_cluster import taskmanager_services

    pids = [pid for service in taskmanager_services(settings) if (pid := service.pid()) is not None]
    if not pids:
        raise StackError("no TaskManager of this stack is running (fyp up starts one)")
    return pids


def cpu_between(samples: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """CPU-seconds used between wall-clock times `start` and `end`, from (time, cumulative CPU-seconds) samples
    sorted by time, interpolated linearly between the two samples around each end. Times outside the samples
    are clamped to the first or last sample.

    >>> cpu_between([(0.0, 10.0), (1.0, 12.0), (2.0, 13.0)], 0.5, 2.0)
    2.0
    """
    if not samples:
        raise ValueError("no CPU samples")
    return round(_cpu_at(samples, end) - _cpu_at(samples, start), 6)


def _cpu_at(samples: Sequence[tuple[float, float]], at: float) -> float:
    times = [t for t, _ in samples]
    i = bisect_left(times, at)
    if i == 0:
        return samples[0][1]
    if i == len(samples):
        return samples[-1][1]
    (t0, c0), (t1, c1) = samples[i - 1], samples[i]
    return c0 + (c1 - c0) * (at - t0) / (t1 - t0) if t1 > t0 else c1


class CpuSampler:
    """Samples the CPU-seconds of `pids` every `interval_s` on a thread, as (time.time(), CPU-seconds) pairs,
    from entering the block to leaving it (one sample at each end too). `cpu_between` then gives the CPU of any
    span inside, e.g. a Flink job's first record to its end, on the same wall clock as Flink's timestamps."""

    def __init__(self, pids: Sequence[int], interval_s: float = 0.2) -> None:
        self.pids = list(pids)
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        self.samples.append((time.time(), process_cpu_seconds(self.pids)))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> CpuSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def between(self, start: float, end: float) -> float:
        return cpu_between(self.samples, start, end)

    @property
    def total(self) -> float:
        """CPU-seconds from the first sample to the last."""
        return round(self.samples[-1][1] - self.samples[0][1], 6)
