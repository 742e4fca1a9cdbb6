"""API tests: the FastAPI app wired to the real dev server, a real worker and real Postgres.

`api` (a fixture; test modules import `api_fixture` to use it) gives an `httpx.AsyncClient` over the app
in-process (ASGI), the `BoomerangClient` the app uses (bound to a fresh worker's
queue), and tokens for one tenant (approver, viewer) and for another tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from boomerang.api import create_app
from boomerang.client import BoomerangClient
from boomerang.settings import Settings
from boomerang.store.queries import Pool
from boomerang.store.tokens import ApiRole, create_token
from tests.fixtures.temporal import StartWorker
from tests.webhooks import SECRET


@dataclass
class Api:
    http: httpx.AsyncClient
    client: BoomerangClient
    tenant: str
    approver_name: str
    approver: str  # tokens
    viewer: str
    stranger: str  # an approver of another tenant

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


async def make_token(pool: Pool, tenant: str, role: ApiRole, name: str | None = None) -> str:
    issued = await create_token(pool, tenant=tenant, role=role, name=name)
    return issued.token.get_secret_value()


@pytest.fixture(name="api")
async def api_fixture(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> AsyncIterator[Api]:
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    name = f"alice-{uuid.uuid4().hex[:6]}"
    async with start_worker(dev_env) as client:
        app = create_app(client=client, pool=store_pool, settings=Settings(), webhook_secret=SECRET)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://boomerang.test") as http:
            yield Api(
                http=http,
                client=client,
                tenant=tenant,
                approver_name=name,
                approver=await make_token(store_pool, tenant, ApiRole.APPROVER, name),
                viewer=await make_token(store_pool, tenant, ApiRole.VIEWER),
                stranger=await make_token(store_pool, f"other-{tenant}", ApiRole.APPROVER),
            )
