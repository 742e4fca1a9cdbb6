"""After a PostgreSQL restart, the API's pool hands out live connections, not dead ones.

A dedicated embedded server (not the session's) is stopped and started again
under a running API; every request after it is back must succeed (each
connection is checked as it leaves the pool, and a dead one replaced).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from boomerang.api import create_app
from boomerang.client import BoomerangClient
from boomerang.settings import Settings
from boomerang.store.embedded import EmbeddedPostgres, start_embedded_postgres
from boomerang.store.migrate import apply_migrations
from boomerang.store.recorder import open_pool
from boomerang.store.tokens import ApiRole
from tests.api import make_token
from tests.fixtures.postgres_control import restart_embedded


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = start_embedded_postgres(tmp_path / "pg")
    try:
        yield server
    finally:
        server.stop()


async def test_the_api_answers_every_request_once_postgres_is_back(
    dev_env: WorkflowEnvironment, own_postgres: EmbeddedPostgres
) -> None:
    await apply_migrations(own_postgres.conninfo)
    pool = await open_pool(own_postgres.conninfo, min_size=4, max_size=4)
    try:
        client = BoomerangClient(dev_env.client, task_queue=f"tq-nobody-{uuid.uuid4().hex}")
        app = create_app(client=client, pool=pool, settings=Settings(), timeout_s=10)
        token = await make_token(pool, f"acme-{uuid.uuid4().hex[:8]}", ApiRole.VIEWER)
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as http:

            async def twelve() -> list[int]:
                answers = await asyncio.gather(*(http.get("/approvals", headers=auth) for _ in range(12)))
                return [a.status_code for a in answers]

            assert await twelve() == [200] * 12  # every pooled connection has been used
            await asyncio.to_thread(restart_embedded, own_postgres)
            assert await twelve() == [200] * 12
            assert await twelve() == [200] * 12
    finally:
        await pool.close()
