"""`create_app`: the FastAPI application over a Boomerang client and a Postgres pool.

    app = create_app(client=client, pool=pool, settings=settings, webhook_secret=secret)

Nothing is opened here: the caller (`boomerang api`, `boomerang dev`, a test) owns
the Temporal client and the pool and closes them. One log line per request
(method, path, status, tenant, duration) and never a header: the Authorization
header, and so the token, has no way into the logs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version

import psycopg
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import SecretStr
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from boomerang.api import (
    routes_approvals,
    routes_cancel,
    routes_gpu_runs,
    routes_runs,
    routes_sweeps,
    routes_tasks,
    routes_webhooks,
)
from boomerang.api.cors import ListedOriginsCORS
from boomerang.api.deps import ApiContext, Pool
from boomerang.api.docs import mount_offline_docs
from boomerang.api.hardening import install_hardening
from boomerang.api.schemas import Health
from boomerang.client import BoomerangClient
from boomerang.inbox import install_inbox
from boomerang.observability.api_metrics import instrument_api
from boomerang.settings import Settings
from boomerang.store.deliveries import DeliveryStore
from boomerang.webhooks.signing import WebhookSigner

log = structlog.get_logger(__name__)


def _version() -> str:
    try:
        return version("boomerang")
    except PackageNotFoundError:
        return "0"


def create_app(
    *,
    client: BoomerangClient,
    pool: Pool,
    settings: Settings,
    webhook_secret: SecretStr | None = None,
    timeout_s: float = 10.0,
) -> FastAPI:
    """The API; `webhook_secret` (whsec_...) enables signed compute callbacks."""
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    app = FastAPI(
        title="Boomerang",
        version=_version(),
        summary="Start validation pipelines, follow them, and decide their checkpoints.",
        # FastAPI's pages load their scripts from a CDN; these are served from the app.
        docs_url=None,
        redoc_url=None,
    )
    mount_offline_docs(app)
    app.state.boomerang = ApiContext(
        client=client,
        pool=pool,
        settings=settings,
        signer=WebhookSigner.from_secret(webhook_secret) if webhook_secret is not None else None,
        deliveries=DeliveryStore(pool),
        timeout_s=timeout_s,
    )
    app.include_router(routes_runs.router)
    app.include_router(routes_approvals.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_tasks.router)
    app.include_router(routes_cancel.router)
    app.include_router(routes_gpu_runs.router)
    app.include_router(routes_sweeps.router)
    # The approvals inbox for people (`/inbox`, `/` redirects there): HTML, not in OpenAPI.
    install_inbox(app)
    app.add_api_route("/health", _health_route(app.state.boomerang), methods=["GET"], response_model=Health,
                      tags=["health"], responses={503: {"model": Health}})  # fmt: skip
    app.middleware("http")(_log_request)
    if settings.api_metrics:
        instrument_api(app, pool=pool)
    if settings.api_cors_origins:
        # Added last, so outermost: a preflight is answered before auth. Only the listed
        # origins get CORS headers (credentials included); any other origin gets none.
        app.add_middleware(ListedOriginsCORS, origins=settings.api_cors_origins)
    # Body size, JSON that can be stored, bounded 422s (boomerang/api/hardening.py).
    install_hardening(app, max_body_bytes=settings.api_max_body_bytes)
    app.add_exception_handler(psycopg.Error, _store_down)
    app.add_exception_handler(PoolTimeout, _store_down)
    return app


def _health_route(ctx: ApiContext) -> Callable[[], Awaitable[JSONResponse]]:
    async def health() -> JSONResponse:
        """Whether Temporal and Postgres answer (no token needed)."""
        database = temporal = True
        try:
            async with ctx.pool.connection(timeout=ctx.timeout_s) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout):
            database = False
        try:
            await ctx.client.temporal.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=ctx.timeout_s)
            )
        except Exception:  # any failure to answer is "not healthy", whatever its type
            temporal = False
        ok = database and temporal
        body = Health(status="ok" if ok else "degraded", temporal=temporal, database=database)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    return health


async def _log_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.monotonic()
    response = await call_next(request)
    log.info(
        "api request",
        method=request.method,
        path=request.url.path,
        status=response.status_code,
        tenant=getattr(request.state, "tenant", None),
        ms=round((time.monotonic() - started) * 1000, 1),
    )
    return response


async def _store_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("api store error", path=request.url.path, error=type(exc).__name__)
    return JSONResponse({"detail": "the database is unavailable"}, status_code=503)
