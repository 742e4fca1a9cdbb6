"""The HTTP API's `/metrics`: requests, decisions taken over HTTP, and the fleet gauges.

    instrument_api(app, pool=pool)   # in create_app, when BOOMERANG_API_METRICS is on

No bearer token, like `/health`: Prometheus scrapes it. In production bind the API
to an internal interface or keep `/metrics` off the public ingress (deploy/README.md).
Routes are labelled by their template (`/status/{run_id}`), never by the raw path,
so no run id, token or query string becomes a label.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram

from boomerang.observability.fleet import FleetGauges, Pool
from boomerang.observability.health import metrics_response

_DECIDE_ROUTES = frozenset({"/hitl/approve"})
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def decision_outcome(status: int) -> str:
    if status < 300:
        return "accepted"
    if status == 409:
        return "refused"
    return "invalid" if status < 500 else "error"


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "boomerang_api_requests",
            "HTTP requests, by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "boomerang_api_request_seconds",
            "HTTP request latency, by route template.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "boomerang_api_decisions",
            "Decisions sent over the HTTP API, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.fleet = FleetGauges(r)


def instrument_api(app: FastAPI, *, pool: Pool) -> ApiMetrics:
    metrics = ApiMetrics()

    async def serve_metrics() -> Response:
        await metrics.fleet.refresh(pool)
        return metrics_response(metrics.registry)

    app.add_api_route("/metrics", serve_metrics, methods=["GET"], include_in_schema=False)

    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.monotonic()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", None) or "unmatched"
        if route != "/metrics":
            metrics.requests.labels(request.method, route, str(response.status_code)).inc()
            metrics.latency.labels(request.method, route).observe(time.monotonic() - started)
            if route in _DECIDE_ROUTES and request.method == "POST":
                metrics.decisions.labels(decision_outcome(response.status_code)).inc()
        return response

    app.middleware("http")(measure)
    return metrics
