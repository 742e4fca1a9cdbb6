"""The worker's HTTP side: `/metrics`, `/livez` and `/readyz` on one port.

    async with serving_health(registry, ready=check, host="0.0.0.0", port=9464):
        ...  # the worker runs

- `/livez`: 200 while the event loop answers (a wedged loop fails the probe).
- `/readyz`: 200 when `ready()` says every dependency answers (Temporal, Postgres),
  503 with the failing ones named otherwise.
- `/metrics`: Prometheus text of `registry` (Boomerang's and the Temporal SDK's).

No bearer token: bind it to the pod network and keep it off any public ingress.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


def metrics_response(registry: CollectorRegistry) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def health_app(registry: CollectorRegistry, *, ready: ReadyCheck) -> Starlette:
    async def metrics(_: Request) -> Response:
        return metrics_response(registry)

    async def livez(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks = await ready()
        ok = all(checks.values())
        return JSONResponse({"status": "ok" if ok else "not ready", **checks}, status_code=200 if ok else 503)

    return Starlette(routes=[Route("/metrics", metrics), Route("/livez", livez), Route("/readyz", readyz)])


class _QuietServer(uvicorn.Server):
    """Signals belong to the worker process, not to this side server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving_health(
    registry: CollectorRegistry, *, ready: ReadyCheck, host: str, port: int
) -> AsyncIterator[uvicorn.Server]:
    """Serve the health app on host:port until the block exits."""
    config = uvicorn.Config(
        health_app(registry, ready=ready), host=host, port=port, log_config=None, access_log=False,
        lifespan="off",
    )  # fmt: skip
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                with contextlib.suppress(SystemExit):  # uvicorn exits on a port it cannot bind
                    task.result()
                raise OSError(f"the worker's metrics port {host}:{port} could not be served")
            await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await task


def readiness(client: Client, pool: Pool, *, timeout_s: float = 3.0) -> ReadyCheck:
    """Ready when Temporal and Postgres both answer within `timeout_s`."""

    async def check() -> dict[str, bool]:
        temporal = database = True
        try:
            await client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=timeout_s)
            )
        except Exception:  # any failure to answer is "not ready", whatever its type
            temporal = False
        try:
            async with pool.connection(timeout=timeout_s) as conn:
                await conn.execute("SELECT 1")
        except Exception:
            database = False
        return {"temporal": temporal, "database": database}

    return check
