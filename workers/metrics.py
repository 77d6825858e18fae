"""Prometheus metrics of a consumer worker, served on `FYP_METRICS_PORT` while `run_consumer` runs.

The counts are the loop's own `LoopStats`, read at each scrape (a custom collector), so the metrics and the counts
`run_consumer` returns are one record, not two that could drift. `FYP_METRICS_HOST` is the address to bind:
127.0.0.1 by default, as every local service; the compose file and the Kubernetes manifests set 0.0.0.0 so that
Prometheus can reach the container. Without `FYP_METRICS_PORT` nothing is served.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from workers.runtime import LoopStats

__all__ = ["LoopStatsCollector", "MetricsServer", "serve_loop_metrics"]


class LoopStatsCollector(Collector):
    """`stats` of the worker `worker` (its consumer group) as counters, read when Prometheus scrapes."""

    def __init__(self, worker: str, stats: LoopStats) -> None:
        self.worker, self.stats = worker, stats

    def collect(self) -> Iterator[Metric]:
        records = CounterMetricFamily("fyp_worker_records", "Records the consumer loop handed to its handler, by "
                                      "outcome: handled and committed, dead-lettered and committed, or handed back "
                                      "for a retry (one record may be retried several times)",
                                      labels=["worker", "outcome"])
        for outcome in ("handled", "dead_lettered", "retried"):
            records.add_metric([self.worker, outcome], getattr(self.stats, outcome))
        yield records
        yield _one("fyp_worker_outputs", "Records the handler's outputs produced to Kafka", self.worker,
                   self.stats.produced)
        yield _one("fyp_worker_partitions_revoked", "Partitions revoked or lost while the loop ran", self.worker,
                   self.stats.revoked)


def _one(name: str, documentation: str, worker: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["worker"])
    family.add_metric([worker], value)
    return family


@dataclass
class MetricsServer:
    """A running metrics endpoint; `close` stops it and unregisters the loop's collector."""

    port: int
    _server: object
    _registry: CollectorRegistry
    _collector: Collector

    def close(self) -> None:
        self._server.shutdown()  # type: ignore[attr-defined]
        self._server.server_close()  # type: ignore[attr-defined]
        self._registry.unregister(self._collector)


def serve_loop_metrics(worker: str, stats: LoopStats, *, environ: Mapping[str, str] = os.environ,
                       registry: CollectorRegistry = REGISTRY) -> MetricsServer | None:
    """Serve `stats` (and the process's default metrics) on FYP_METRICS_PORT; None when it is unset or empty."""
    port = environ.get("FYP_METRICS_PORT", "").strip()
    if not port:
        return None
    collector = LoopStatsCollector(worker, stats)
    registry.register(collector)
    try:
        server, _thread = start_http_server(int(port), addr=environ.get("FYP_METRICS_HOST", "127.0.0.1"),
                                            registry=registry)
    except (OSError, ValueError):
        registry.unregister(collector)
        raise
    return MetricsServer(port=server.server_port, _server=server, _registry=registry, _collector=collector)
