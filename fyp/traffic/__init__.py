"""Synthetic engagement traffic for fyp.engagement.v1: a seeded behaviour model and a fast encoder.

`generate_events` yields readable (record name, record) pairs; `generate_batches` / `TrafficGenerator`
yield Kafka-ready (key, value) pairs; `fyp.traffic.producer` sends them to Kafka.
"""

from fyp.traffic.config import TrafficConfig
from fyp.traffic.encoder import EncodedBatch
from fyp.traffic.stream import TrafficGenerator, generate_batches, generate_events, wall_clock_ms

__all__ = [
    "EncodedBatch",
    "TrafficConfig",
    "TrafficGenerator",
    "generate_batches",
    "generate_events",
    "wall_clock_ms",
]
