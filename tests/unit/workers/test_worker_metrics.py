"""The consumer loop's counts on FYP_METRICS_PORT: a real HTTP endpoint scraped as Prometheus would, over plain
LoopStats (the Kafka side of `run_consumer` is tested against the broker in tests/integration)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry

from workers.metrics import serve_loop_metrics
from workers.runtime import LoopStats


def test_the_loop_counts_are_served_as_they_change_and_the_endpoint_closes():
    stats, registry = LoopStats(), CollectorRegistry()
    server = serve_loop_metrics("fyp-transcoder", stats, environ={"FYP_METRICS_PORT": "0"}, registry=registry)
    assert server is not None
    url = f"http://127.0.0.1:{server.port}/metrics"
    try:
        stats.handled, stats.produced, stats.dead_lettered = 3, 5, 1
        text = httpx.get(url, timeout=5).text
        assert 'fyp_worker_records_total{outcome="handled",worker="fyp-transcoder"} 3.0' in text
        assert 'fyp_worker_records_total{outcome="dead_lettered",worker="fyp-transcoder"} 1.0' in text
        assert 'fyp_worker_outputs_total{worker="fyp-transcoder"} 5.0' in text
        stats.handled += 1  # read at each scrape: the same counts run_consumer returns
        assert 'outcome="handled",worker="fyp-transcoder"} 4.0' in httpx.get(url, timeout=5).text
    finally:
        server.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
    assert list(registry.collect()) == []  # unregistered: a next loop in the process can register again


def test_nothing_is_served_without_a_port():
    assert serve_loop_metrics("w", LoopStats(), environ={}, registry=CollectorRegistry()) is None
    assert serve_loop_metrics("w", LoopStats(), environ={"FYP_METRICS_PORT": " "}, registry=CollectorRegistry()) is None
