"""What a run has cost, from its Ledger: the source of truth for budgets and `boomerang cost`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict

from boomerang.money import Usd

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


class CostLine(BaseModel):
    """The spend of one phase or specialist within a run, by kind of resource."""

    model_config = ConfigDict(frozen=True)

    phase: str | None
    boomer_ang_id: str | None
    attempts: int
    gpu_seconds: Decimal
    gpu_cost: Usd
    cpu_cost: Usd
    memory_cost: Usd
    llm_cost: Usd
    input_tokens: int
    output_tokens: int
    total_cost: Usd


class CostReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    lines: list[CostLine]
    total_cost: Usd


_BREAKDOWN = """
SELECT phase, boomer_ang_id, count(*) FILTER (WHERE total_cost IS NOT NULL) AS attempts,
       COALESCE(sum(gpu_seconds), 0) AS gpu_seconds, COALESCE(sum(gpu_cost), 0) AS gpu_cost,
       COALESCE(sum(cpu_cost), 0) AS cpu_cost, COALESCE(sum(memory_cost), 0) AS memory_cost,
       COALESCE(sum(llm_cost), 0) AS llm_cost, COALESCE(sum(input_tokens), 0)::bigint AS input_tokens,
       COALESCE(sum(output_tokens), 0)::bigint AS output_tokens, COALESCE(sum(total_cost), 0) AS total_cost
FROM ledger WHERE run_id = %s AND total_cost IS NOT NULL
GROUP BY phase, boomer_ang_id
ORDER BY min(seq)
"""


async def cost_report(pool: Pool, run_id: str) -> CostReport:
    """Every costed Ledger row of the run, grouped by phase and specialist; retries count."""
    async with pool.connection() as conn, conn.cursor(row_factory=class_row(CostLine)) as cur:
        await cur.execute(_BREAKDOWN, (run_id,))
        lines = await cur.fetchall()
    return CostReport(run_id=run_id, lines=lines, total_cost=sum((x.total_cost for x in lines), Decimal(0)))


async def cost_to_date(pool: Pool, run_id: str) -> Decimal:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT COALESCE(sum(total_cost), 0) FROM ledger WHERE run_id = %s", (run_id,)
        )
        row = await cur.fetchone()
    return Decimal(row[0]) if row else Decimal(0)


class LedgerCosts:
    """Spend per run, read from the Ledger (the `CostReader` the budget activity needs)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def cost_to_date(self, run_id: str) -> Decimal:
        return await cost_to_date(self._pool, run_id)
