"""CPU cost of the naive peer's per-event work with no Kafka or Redis: decode + fold + pack, old path (the reference
`to_engagement_row` + `FeatureEvaluator`) against new (`FastDecoder` + `FastFold`), alternating rounds.

The loop is `naive_consumer`'s without the I/O: batches of 10,000 values, each good row folded into its entity, then
the packed value of every entity the batch touched. CPU time is `time.process_time` (this process), so contention
from other processes disturbs it less than wall time; print the load average beside it anyway.

    python -m fyp.bench.peers.offline_cost --events 300000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from features.engagement.video_engagement import v1
from featurespec.reference.evaluate import FeatureEvaluator
from fyp.bench.peers.fast_decode import FastDecoder
from fyp.bench.peers.fast_fold import FastFold
from fyp.bench.peers.naive_consumer import BATCH_SIZE, fold_batch
from fyp.traffic.config import TrafficConfig
from fyp.traffic.stream import TrafficGenerator
from udfs.envelope import to_engagement_row

__all__ = ["events_per_cpu_second", "generated_values"]


def generated_values(events: int, *, users: int = 100_000, videos: int = 200_000, seed: int = 11) -> list[bytes]:
    """`events` Kafka values of TrafficGenerator(users, videos, seed), stamped with the wall clock."""
    generator = TrafficGenerator(TrafficConfig(users=users, videos=videos), seed)
    values: list[bytes] = []
    while len(values) < events:
        values += [value for _, value in generator.next_batch(BATCH_SIZE).pairs]
    return values[:events]


def events_per_cpu_second(values: list[bytes], decode: Callable[[bytes, int], tuple], fold: Any) -> tuple[float, int]:
    """(events per CPU-second, values packed) of decoding, folding and packing `values` in batches."""
    now_ms = int(time.time() * 1000)
    states: dict[str, Any] = {}
    packed = 0
    start = time.process_time()
    for first in range(0, len(values), BATCH_SIZE):
        touched = fold_batch(values[first: first + BATCH_SIZE], now_ms, decode, fold, states)
        packed += len({entity: fold.pack(states[entity]) for entity in touched})
    return len(values) / (time.process_time() - start), packed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    values = generated_values(args.events)
    for round_ in range(1, args.rounds + 1):
        old, old_packed = events_per_cpu_second(values, to_engagement_row, FeatureEvaluator.of(v1))
        new, new_packed = events_per_cpu_second(values, FastDecoder(), FastFold.of(v1))
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"round {round_}: old {old:,.0f} events per CPU-second, new {new:,.0f} ({new / old:.2f}x); packed "
              f"{old_packed} / {new_packed}; load average {load}", flush=True)


if __name__ == "__main__":
    main()
