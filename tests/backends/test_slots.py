"""PostgresSlots: limits held in Postgres across limiters (as across workers), fair between tenants."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from activities.limits import ConcurrencyLimits
from activities.slots import PostgresSlots, _Row
from tests.helpers import wait_until

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _row(n: int, tenant: str, *, granted: bool = False, function: str = "f", gpu: str | None = None) -> _Row:
    return _Row(f"s{n:03}", tenant, function, gpu, T0 + timedelta(seconds=n), granted)


def test_a_round_grants_the_tenant_holding_fewest_first_then_the_oldest() -> None:
    slots = PostgresSlots(pool=None, limits=ConcurrencyLimits(default=3))  # type: ignore[arg-type]
    held = [_row(0, "big", granted=True)]
    backlog = [_row(n, "big") for n in range(1, 9)]
    late = [_row(20, "small")]
    # Two free slots: "small" holds none, so it is served before "big"'s older backlog.
    assert slots.grants(held + backlog + late) == ["s020", "s001"]


def test_a_round_respects_gpu_classes_and_the_total() -> None:
    limits = ConcurrencyLimits(per_gpu={"A10G": 1}, total=2)
    slots = PostgresSlots(pool=None, limits=limits)  # type: ignore[arg-type]
    rows = [_row(1, "a", gpu="A10G"), _row(2, "b", gpu="A10G"), _row(3, "c"), _row(4, "d")]
    assert slots.grants(rows) == ["s001", "s003"]


async def test_two_limiters_on_one_database_never_exceed_the_limit(store_pool: Pool) -> None:
    function = f"fn-{uuid.uuid4().hex[:8]}"
    limits = ConcurrencyLimits(per_function={function: 2})
    workers = [PostgresSlots(store_pool, limits, poll_max_s=0.05) for _ in range(2)]
    inside, peak = 0, 0

    async def call(slots: PostgresSlots, n: int) -> None:
        nonlocal inside, peak
        async with slots.slot(function=function, tenant=f"t{n % 3}"):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.05)
            inside -= 1

    await asyncio.gather(*(call(workers[n % 2], n) for n in range(12)))
    assert peak == 2
    async with store_pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM compute_slots WHERE function = %s", (function,))
        assert await cur.fetchone() == (0,)


async def test_a_dead_holders_slot_is_reclaimed_when_its_lease_expires(store_pool: Pool) -> None:
    function = f"fn-{uuid.uuid4().hex[:8]}"
    limits = ConcurrencyLimits(per_function={function: 1})
    async with store_pool.connection() as conn:
        # What a SIGKILLed worker leaves: a granted slot that nobody renews.
        await conn.execute(
            "INSERT INTO compute_slots (slot_id, holder, tenant, function, requested_at, granted_at,"
            " expires_at) VALUES (%s, 'dead:1', 't', %s, now(), now(), now() + interval '1 second')",
            (uuid.uuid4().hex, function),
        )
    slots = PostgresSlots(store_pool, limits, poll_max_s=0.05)
    started = asyncio.get_running_loop().time()
    async with slots.slot(function=function, tenant="t"):
        waited = asyncio.get_running_loop().time() - started
    assert 0.5 < waited < 10


async def test_an_unlimited_call_takes_no_row(store_pool: Pool) -> None:
    slots = PostgresSlots(store_pool, ConcurrencyLimits())
    function = f"fn-{uuid.uuid4().hex[:8]}"

    async def rows() -> int:
        async with store_pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM compute_slots WHERE function = %s", (function,))
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    async with slots.slot(function=function, tenant="t"):
        assert await wait_until(rows, what="a count") == 0
