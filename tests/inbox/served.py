"""The API app served by uvicorn on 127.0.0.1 (an ephemeral port) inside the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from tests.helpers import wait_until


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool | None:
        if task.done():
            task.result()  # raises what stopped it
        return True if server.started else None

    await wait_until(started, what="uvicorn to listen", timeout_s=20)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
