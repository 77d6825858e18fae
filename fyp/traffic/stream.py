"""The generator's entry points: a seeded stream of events, as records or as Kafka-ready bytes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from fyp.traffic.config import TrafficConfig
from fyp.traffic.encoder import EncodedBatch, FastEncoder
from fyp.traffic.ids import RunIds
from fyp.traffic.model import TrafficModel
from fyp.traffic.records import RecordRenderer
from schemas.registry import SchemaRegistry, default_registry

__all__ = ["TrafficGenerator", "generate_batches", "generate_events", "wall_clock_ms"]

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class TrafficGenerator:
    """One stream of synthetic engagement. Same config, seed, run_id and clock readings: same stream.

    seed: seeds every random draw. run_id: UUID behind event and session ids (default: random, so
    that two runs never share event ids). clock: epoch-milliseconds source read once per block.

    >>> gen = TrafficGenerator(TrafficConfig(users=50, videos=200), seed=7, clock=lambda: 1_700_000_000_000)
    >>> batch = gen.next_batch(10)
    >>> len(batch.pairs) == sum(batch.counts.values())
    True
    """

    def __init__(
        self,
        config: TrafficConfig,
        seed: int,
        *,
        run_id: str | None = None,
        clock: Clock = wall_clock_ms,
        registry: SchemaRegistry | None = None,
    ) -> None:
        registry = registry or default_registry()
        ids = RunIds(run_id=run_id) if run_id else RunIds.random()
        self._clock = clock
        self._model = TrafficModel(config, seed)
        self._encoder = FastEncoder(registry, self._model.catalog, ids, seed)
        self._records = RecordRenderer(self._model.catalog, ids, registry)

    @property
    def model(self) -> TrafficModel:
        return self._model

    def next_batch(self, views: int) -> EncodedBatch:
        """The events of the next `views` views (about 2.3 events each), encoded."""
        return self._encoder.encode(self._model.next_block(views, self._clock()))

    def next_records(self, views: int) -> list[tuple[str, dict[str, Any]]]:
        """The events of the next `views` views as (record name, record); byte-level faults are left out."""
        return list(self._records.render(self._model.next_block(views, self._clock())))


def generate_batches(
    config: TrafficConfig, seed: int, *, views_per_batch: int = 1_000, **options: Any
) -> Iterator[EncodedBatch]:
    """Endless encoded batches; `options` go to TrafficGenerator (run_id, clock, registry)."""
    generator = TrafficGenerator(config, seed, **options)
    while True:
        yield generator.next_batch(views_per_batch)


def generate_events(config: TrafficConfig, seed: int, **options: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Endless (record name, record) pairs, ready for `SchemaRegistry.encode`; options as above."""
    generator = TrafficGenerator(config, seed, **options)
    while True:
        yield from generator.next_records(500)
