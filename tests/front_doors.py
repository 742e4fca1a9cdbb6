"""One stack, three front doors: the `boomerang` CLI (subprocess), the HTTP API, the client.

`front_doors` starts a worker on a fresh task queue (real Temporal dev server, real
Postgres, the local compute backend) and gives what each door needs to reach it:
the environment for a `boomerang` subprocess, an httpx client over the API app with
an approver token of one tenant, and a `BoomerangClient` with the records pool.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from activities.webhooks import WebhookActivities
from boomerang.api import create_app
from boomerang.client import BoomerangClient
from boomerang.settings import Settings
from boomerang.store.costs import LedgerCosts
from boomerang.store.deliveries import DeliveryStore
from boomerang.store.queries import Pool
from boomerang.store.tokens import ApiRole
from tests.api import make_token
from tests.fixtures.temporal import WEBHOOK_SECRET
from worker import build_worker


@dataclass(frozen=True)
class FrontDoors:
    client: BoomerangClient
    http: httpx.AsyncClient
    env: dict[str, str]
    tenant: str
    approver_name: str
    approver: str  # an approver token of `tenant`
    viewer: str
    stranger: str  # an approver token of another tenant

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def front_doors(
    env: WorkflowEnvironment, backend: LocalBackend, events: EventSink, pool: Pool, pg_conninfo: str
) -> AsyncIterator[FrontDoors]:
    task_queue = f"tq-doors-{uuid.uuid4().hex}"
    tenant = f"doors-{uuid.uuid4().hex[:8]}"
    name = f"alice-{uuid.uuid4().hex[:6]}"
    webhooks = WebhookActivities(deliveries=DeliveryStore(pool), events=events, secret=WEBHOOK_SECRET)
    async with build_worker(
        env.client, task_queue=task_queue, backend=backend, events=events,
        costs=LedgerCosts(pool), webhooks=webhooks,
    ):  # fmt: skip
        client = BoomerangClient(env.client, task_queue=task_queue, records=pool)
        app = create_app(client=client, pool=pool, settings=Settings())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://boomerang.test") as http:
            yield FrontDoors(
                client=client,
                http=http,
                env={
                    "BOOMERANG_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                    "BOOMERANG_TEMPORAL_TASK_QUEUE": task_queue,
                    "BOOMERANG_TEMPORAL_NAMESPACE": env.client.namespace,
                    "DATABASE_URL": pg_conninfo,
                },
                tenant=tenant,
                approver_name=name,
                approver=await make_token(pool, tenant, ApiRole.APPROVER, name),
                viewer=await make_token(pool, tenant, ApiRole.VIEWER),
                stranger=await make_token(pool, f"other-{tenant}", ApiRole.APPROVER),
            )
