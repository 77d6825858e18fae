"""The benchmarks' TaskManager CPU (fyp/bench/proc_cpu.py) on the real stack: the pids are the TaskManager JVMs,
and the sampled CPU only grows."""

from __future__ import annotations

import time
from pathlib import Path

from fyp.bench.proc_cpu import CpuSampler, load_average_1m, taskmanager_pids
from fyp.config import Settings


def test_taskmanager_pids_are_the_taskmanager_jvms(settings: Settings) -> None:
    pids = taskmanager_pids(settings)
    assert len(pids) == settings.taskmanagers
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].endswith(b"java"), cmdline[:2]  # the JVM itself, not a wrapper script
        assert b"org.apache.flink.runtime.taskexecutor.TaskManagerRunner" in cmdline


def test_sampled_cpu_grows_and_covers_the_block(settings: Settings) -> None:
    with CpuSampler(taskmanager_pids(settings), interval_s=0.05) as cpu:
        started = time.time()
        deadline = time.process_time() + 0.5
        while time.process_time() < deadline:  # keep the machine busy a moment; the JVM ticks on regardless
            pass
        ended = time.time()
    values = [c for _, c in cpu.samples]
    assert len(values) >= 5 and values == sorted(values)
    assert 0 <= cpu.between(started, ended) <= cpu.total
    assert load_average_1m() >= 0
