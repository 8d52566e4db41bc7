"""Prometheus metrics and one structured log line per request."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("citeqa.access")
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("citeqa")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


class Metrics:
    """One registry per app, so that two apps in one process never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "citeqa_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "citeqa_request_seconds",
            "Request latency by route and retrieval mode.",
            ["route", "mode"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "citeqa_answers", "Answers by whether the corpus could answer.", ["answerable"], registry=self.registry
        )
        self.written = Counter(
            "citeqa_written_answers",
            "Written answers by status (written, unsupported, declined, extractive after an LLM failure).",
            ["status"],
            registry=self.registry,
        )
        self.index_size = Gauge("citeqa_index_items", "Items in the loaded index.", ["kind"], registry=self.registry)
        self.index_bytes = Gauge("citeqa_index_bytes", "Bytes of the loaded index's artifacts.", registry=self.registry)
        self.in_flight = Gauge(
            "citeqa_searches_in_flight", "Searches admitted and not yet done.", registry=self.registry
        )
        self.ready = Gauge("citeqa_ready", "1 once the index is loaded.", registry=self.registry)

    def describe_index(self, manifest: dict[str, Any]) -> None:
        counts = manifest.get("counts", {})
        for kind in ("documents", "chunks", "sentences"):
            self.index_size.labels(kind).set(float(counts.get(kind, 0)))
        self.index_bytes.set(float(sum(a.get("bytes", 0) for a in manifest.get("artifacts", {}).values())))
        self.ready.set(1)


class RequestTelemetry:
    """Counts and times every request by its route template (never the raw path, which would
    let clients create unbounded label values) and logs one JSON line for it. Headers are
    never logged, so neither is an API key."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        scope.setdefault("state", {})

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            details: dict[str, Any] = scope["state"].get("citeqa", {})
            mode = str(details.get("mode", "-"))
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route, mode).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                line = {"route": route, "method": scope["method"], "status": status}
                line["latency_ms"] = round(elapsed * 1000, 2)
                line.update(details)
                access_log.info("request", extra={"fields": line})
