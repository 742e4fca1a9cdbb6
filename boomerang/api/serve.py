"""Serve the HTTP API with uvicorn: alone (`boomerang api`) or beside a worker (`boomerang dev`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from temporalio.client import Client

from boomerang.api import create_app
from boomerang.client import BoomerangClient
from boomerang.connect import connect_temporal
from boomerang.errors import BoomerangError
from boomerang.settings import Settings
from boomerang.store.recorder import open_pool
from boomerang.webhooks.urls import WebhookUrlPolicy


class _HostedServer(uvicorn.Server):
    """A uvicorn server inside a process that owns SIGINT/SIGTERM itself (`boomerang dev`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api(
    settings: Settings,
    *,
    conninfo: str,
    client: Client | None = None,
    stop: asyncio.Event | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve until `stop` is set (or, without one, until SIGINT/SIGTERM).

    `sock`, already bound (by `boomerang dev`, before it starts anything), replaces
    binding `settings.api_host:api_port` here, so nothing can take the port in between.
    Raises ApiStartError when the server cannot start, instead of uvicorn's sys.exit.
    """
    temporal = client or await connect_temporal(settings)
    pool = await open_pool(conninfo, min_size=1, max_size=10)
    try:
        app = create_app(
            client=BoomerangClient(
                temporal,
                task_queue=settings.temporal_task_queue,
                webhook_policy=WebhookUrlPolicy.from_settings(settings),
            ),
            pool=pool,
            settings=settings,
            webhook_secret=settings.webhook_secret,
        )
        config = uvicorn.Config(app, host=settings.api_host, port=settings.api_port, log_config=None)
        server = uvicorn.Server(config) if stop is None else _HostedServer(config)
        serving = asyncio.create_task(_serve(server, sock))
        if stop is not None:
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            stopping.cancel()
        await serving
    finally:
        await pool.close()


class ApiStartError(BoomerangError, RuntimeError):
    """The HTTP API could not start (uvicorn has logged why)."""


async def _serve(server: uvicorn.Server, sock: socket.socket | None) -> None:
    try:
        await server.serve(sockets=[sock] if sock is not None else None)
    except SystemExit:  # uvicorn's answer to a failed startup; in a task it would end the loop
        raise ApiStartError(
            f"the HTTP API could not start on {server.config.host}:{server.config.port}"
        ) from None
