"""What every route needs: the resources `create_app` was given, and run ownership.

A run another tenant owns is answered exactly like a run that does not exist
(404): a token must not learn which run ids are in use elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from fastapi import HTTPException, Request
from psycopg_pool import AsyncConnectionPool
from temporalio.client import WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from boomerang.client import BoomerangClient
from boomerang.constants import SA_TENANT
from boomerang.errors import RunStuckError, RunUnresponsiveError
from boomerang.settings import Settings
from boomerang.store.deliveries import DeliveryStore
from boomerang.webhooks.signing import WebhookSigner

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


@dataclass(frozen=True)
class ApiContext:
    client: BoomerangClient
    pool: Pool
    settings: Settings
    signer: WebhookSigner | None
    deliveries: DeliveryStore
    # How long a route waits on Temporal (a query needs a live worker) before a 504.
    timeout_s: float


def context(request: Request) -> ApiContext:
    return cast(ApiContext, request.app.state.boomerang)


def not_found(run_id: str) -> HTTPException:
    return HTTPException(404, f"no run {run_id!r}")


@asynccontextmanager
async def upstream(what: str, timeout_s: float) -> AsyncIterator[None]:
    """Temporal trouble as HTTP: not found -> 404, refused input -> 400, slow -> 504, down -> 503."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError:
        raise HTTPException(504, f"{what}: Temporal did not answer in {timeout_s:g}s") from None
    except RunStuckError as exc:
        raise HTTPException(409, str(exc)) from None
    except RunUnresponsiveError as exc:
        raise HTTPException(504, str(exc)) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"{what}: not found") from None
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            raise HTTPException(400, f"{what}: {exc.message}") from None
        raise HTTPException(503, f"{what}: Temporal unavailable") from None


async def owned_run(ctx: ApiContext, run_id: str, tenant: str) -> WorkflowExecutionDescription:
    """The run's description if `tenant` owns it; 404 otherwise (absent or another tenant's)."""
    try:
        async with upstream("run", ctx.timeout_s):
            described = await ctx.client.temporal.get_workflow_handle(run_id).describe()
    except HTTPException as exc:
        if exc.status_code in (400, 404):
            raise not_found(run_id) from None
        raise
    if described.typed_search_attributes.get(SA_TENANT) != tenant:
        raise not_found(run_id)
    return described
