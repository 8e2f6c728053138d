"""Prometheus metrics, one registry per app (no module-level state)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "memhub_http_requests_total",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "memhub_http_request_duration_seconds",
            "HTTP request latency by method and route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.revisions = Counter(
            "memhub_revisions_written_total",
            "Revisions committed through this node",
            ["kind"],
            registry=self.registry,
        )
        self.bytes_in = Counter(
            "memhub_bytes_received_total", "File bytes received", registry=self.registry
        )
        self.bytes_out = Counter(
            "memhub_bytes_sent_total", "File bytes sent", registry=self.registry
        )
        self.rejections = Counter(
            "memhub_admission_rejections_total",
            "Requests refused before their route: unauthorized, rate_limited, bad_request",
            ["reason"],
            registry=self.registry,
        )
        self.corrupt_chunks = Counter(
            "memhub_storage_corrupt_chunks_total",
            "Chunks that failed their sha256 when read (never sent; run memhub fsck)",
            registry=self.registry,
        )
        self.redis_failures = Counter(
            "memhub_ratelimit_redis_failures_total",
            "Rate-limit checks that could not reach Redis (served in-process or refused)",
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts and times every request by its route template (bounded label set)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, label, str(status)).inc()
            self.metrics.latency.labels(method, label).observe(time.perf_counter() - start)
