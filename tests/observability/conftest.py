"""A production-shaped worker (metrics port, its own Temporal Runtime) and the API beside it.

`observed` runs one pipeline through the API and the worker once per module: kicked
off over HTTP, its first
checkpoint approved over HTTP, a bad signal refused, the second checkpoint rejected
by update; then it scrapes the worker's and the API's `/metrics`.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from boomerang.api import create_app
from boomerang.client import BoomerangClient
from boomerang.models.decisions import RunStatus
from boomerang.models.events import EventKind
from boomerang.models.pipeline import Decision
from boomerang.observability.temporal_runtime import TemporalTelemetry
from boomerang.settings import Settings
from boomerang.store.queries import Pool, ledger_for_run
from boomerang.store.tokens import ApiRole, create_token
from tests.fixtures.temporal import WEBHOOK_SECRET
from tests.helpers import decide, wait_for_checkpoint
from worker import running_worker

# Free text that must never reach a metric label or a log line.
BRIEF = "We build OBSERVABILITY-BRIEF-7f3a for clinics; invoices cost them hours every week."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Observed:
    run_id: str
    tenant: str
    token: str
    worker_metrics: str
    api_metrics: str
    livez: httpx.Response
    readyz: httpx.Response
    ledger_attempts: int
    ledger_total: Decimal


@pytest.fixture(scope="module")
async def observed(dev_env: WorkflowEnvironment, pg_conninfo: str, store_pool_module: Pool) -> Observed:
    telemetry = TemporalTelemetry(metrics=True)
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=telemetry.runtime,
    )
    port = free_port()
    settings = Settings(
        temporal_task_queue=f"tq-{uuid.uuid4().hex}",
        worker_metrics_port=port,
        webhook_secret=WEBHOOK_SECRET,
    )
    tenant = f"obs-{uuid.uuid4().hex[:8]}"
    pool = store_pool_module
    token = (await create_token(pool, tenant=tenant, role=ApiRole.APPROVER, name="alice")).token
    bearer = {"Authorization": f"Bearer {token.get_secret_value()}"}
    base = f"http://127.0.0.1:{port}"
    async with running_worker(settings, conninfo=pg_conninfo, client=client, telemetry=telemetry):
        boomerang = BoomerangClient(client, task_queue=settings.temporal_task_queue)
        app = create_app(client=boomerang, pool=pool, settings=settings, webhook_secret=WEBHOOK_SECRET)
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://boomerang.test") as api,
            httpx.AsyncClient(base_url=base) as scrape,
        ):
            kicked = await api.post(
                "/kickoff",
                headers=bearer,
                json={"project_id": "clinic", "brief": BRIEF},
            )
            assert kicked.status_code == 202, kicked.text
            run_id = kicked.json()["run_id"]
            await wait_for_checkpoint(boomerang, run_id, "approve_founders_brief")
            approved = await api.post(
                "/hitl/approve",
                headers=bearer,
                json={"run_id": run_id, "checkpoint": "approve_founders_brief", "decision": "approve"},
            )
            assert approved.status_code == 200, approved.text
            handle = client.get_workflow_handle(run_id)
            await handle.signal("approve", {"checkpoint": "no_such_checkpoint", "approver": "mallory"})
            await decide(boomerang, run_id, "approve_customer_profile", Decision.REJECT)
            result = await boomerang.result(run_id)
            assert result.status is RunStatus.REJECTED
            ledger = await ledger_for_run(pool, run_id)
            livez = await scrape.get("/livez")
            readyz = await scrape.get("/readyz")
            worker_metrics = (await scrape.get("/metrics")).text
            api_metrics = (await api.get("/metrics")).text
    attempts = [r for r in ledger.entries if r.kind == EventKind.COMPUTE_ATTEMPT]
    return Observed(
        run_id=run_id,
        tenant=tenant,
        token=token.get_secret_value(),
        worker_metrics=worker_metrics,
        api_metrics=api_metrics,
        livez=livez,
        readyz=readyz,
        ledger_attempts=len(attempts),
        ledger_total=sum((r.total_cost or Decimal(0) for r in attempts), Decimal(0)),
    )


@pytest.fixture(scope="module")
async def store_pool_module(pg_conninfo: str) -> AsyncIterator[Pool]:
    from boomerang.store.recorder import open_pool

    pool = await open_pool(pg_conninfo, min_size=1, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()
