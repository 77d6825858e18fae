"""`/metrics` for fyp's HTTP services (the index service, the upload API): requests and their latency per route,
and the process's default metrics, for Prometheus (docker/prometheus.yml scrapes both).

A plain ASGI middleware, not Starlette's `BaseHTTPMiddleware`, which wraps every response in a task and a stream.
A request is labelled with the route's path template (`/v1/similar/{video_id}`), never the raw path, and a method
outside the usual seven is `OTHER`, so that the label set stays bounded whatever the clients send; a request no route
matched is `unmatched`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

__all__ = ["instrument"]

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
# A client may send any method token; one outside these is labelled OTHER, so labels stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Measured:
    def __init__(self, app: Any, *, service: str, requests: Counter, latency: Histogram) -> None:
        self.app, self.service, self.requests, self.latency = app, service, requests, latency

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # set in place by the router
            if route != "/metrics":
                method = scope["method"] if scope["method"] in _METHODS else "OTHER"
                self.requests.labels(self.service, method, route, str(status)).inc()
                self.latency.labels(self.service, route).observe(time.perf_counter() - started)


# Registered once per process (prometheus_client refuses a metric name twice): every app instrumented in the
# process shares them, told apart by the `service` label.
_REQUESTS = Counter("fyp_http_requests", "HTTP requests by service, method, route template and status",
                    ["service", "method", "route", "status"])
_LATENCY = Histogram("fyp_http_request_seconds", "HTTP request latency by service and route template",
                     ["service", "route"], buckets=_LATENCY_BUCKETS_S)


def instrument(app: FastAPI, service: str) -> None:
    """Count and time `app`'s requests under `service`, and serve the process's metrics on `GET /metrics`."""
    app.add_middleware(_Measured, service=service, requests=_REQUESTS, latency=_LATENCY)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
