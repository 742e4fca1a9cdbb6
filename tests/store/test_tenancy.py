"""Customers read the Charter of their own tenant only, and never the Ledger."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from boomerang.store.queries import charter_for_run
from boomerang.store.recorder import EventStore
from tests.store import execute_as, make_event, new_run

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


async def _two_tenants(event_store: EventStore) -> tuple[str, str]:
    run_a, run_b = new_run(), new_run()
    for n in range(3):
        await event_store.record(make_event(run_a, n, tenant="tenant-a"))
        await event_store.record(make_event(run_b, n, tenant="tenant-b"))
    return run_a, run_b


async def test_tenant_sees_only_its_rows(store_pool: Pool, event_store: EventStore) -> None:
    run_a, run_b = await _two_tenants(event_store)
    assert len(await charter_for_run(store_pool, run_a, "tenant-a")) == 3
    assert await charter_for_run(store_pool, run_b, "tenant-a") == []
    assert len(await charter_for_run(store_pool, run_b, "tenant-b")) == 3


@pytest.mark.parametrize("setup", [None, "", "RESET boomerang.tenant"])
async def test_no_tenant_sees_nothing(store_pool: Pool, event_store: EventStore, setup: str | None) -> None:
    await _two_tenants(event_store)
    async with store_pool.connection() as conn, conn.transaction():
        if setup == "":
            await conn.execute("SELECT set_config('boomerang.tenant', '', true)")
        elif setup:
            await conn.execute(setup)
        await conn.execute("SET LOCAL ROLE boomerang_customer")
        for table in ("charter", "progress"):
            cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            assert await cur.fetchone() == (0,)


@pytest.mark.parametrize(
    "table", ["ledger", "ledger_keys", "ledger_heads", "runs", "approvals", "schema_migrations"]
)
async def test_customer_is_denied_internal_tables(store_pool: Pool, table: str) -> None:
    query = sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(table))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await execute_as(store_pool, "boomerang_customer", query)


async def test_customer_cannot_write_the_charter(store_pool: Pool) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await execute_as(store_pool, "boomerang_customer", "DELETE FROM charter")
