"""Read models: the customer's Charter, the internal Ledger statement, approvals, runs.

`charter_for_run` reads as `boomerang_customer` with the tenant set for the
transaction only, so row-level security (not a WHERE clause we might forget)
decides what comes back. The others are internal reads as the login role.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict

from boomerang.money import Usd
from boomerang.store.charter import CharterRow

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
CUSTOMER_ROLE = "boomerang_customer"


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    event_key: str
    kind: str
    status: str
    phase: str | None
    task_type: str | None
    attempt: int
    occurred_at: datetime
    recorded_at: datetime
    gpu_type: str | None
    gpu_seconds: Decimal | None
    provider: str | None
    model_name: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_cost: Usd | None
    message: str
    row_hash: str


class LedgerStatement(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    entries: list[LedgerEntry]
    total_cost: Usd


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    checkpoint: str
    tenant: str
    phase: str | None
    status: str
    opened_at: datetime
    deadline: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decision: str | None


class RunSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    tenant: str
    project_id: str | None
    kind: str
    status: str
    current_phase: str | None
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    pending_approvals: int
    events: int
    total_cost: Usd


_CHARTER = sql.SQL("SELECT {} FROM charter WHERE run_id = %s ORDER BY occurred_at, id").format(
    sql.SQL(", ").join(map(sql.Identifier, CharterRow.model_fields))
)
_LEDGER = sql.SQL("SELECT {} FROM ledger WHERE run_id = %s ORDER BY stream, seq").format(
    sql.SQL(", ").join(map(sql.Identifier, LedgerEntry.model_fields))
)
_APPROVALS = sql.SQL(
    "SELECT {} FROM approvals WHERE status = 'pending' AND (%(tenant)s::text IS NULL"
    " OR tenant = %(tenant)s) ORDER BY opened_at"
).format(sql.SQL(", ").join(map(sql.Identifier, Approval.model_fields)))
_SUMMARY = """
SELECT r.run_id, r.tenant, r.project_id, r.kind, r.status, r.current_phase, r.started_at,
       r.completed_at, r.updated_at,
       (SELECT count(*) FROM approvals a WHERE a.run_id = r.run_id AND a.status = 'pending')
           AS pending_approvals,
       (SELECT count(*) FROM ledger_keys k WHERE k.stream = r.run_id) AS events,
       (SELECT COALESCE(sum(l.total_cost), 0) FROM ledger l WHERE l.run_id = r.run_id)
           AS total_cost
FROM runs r WHERE r.run_id = %s
"""


async def charter_for_run(pool: Pool, run_id: str, tenant: str) -> list[CharterRow]:
    """The run's Charter as its tenant sees it: nothing when `tenant` does not own it."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(CUSTOMER_ROLE)))
        await conn.execute("SELECT set_config('boomerang.tenant', %s, true)", (tenant,))
        async with conn.cursor(row_factory=class_row(CharterRow)) as cur:
            await cur.execute(_CHARTER, (run_id,))
            return await cur.fetchall()


async def ledger_for_run(pool: Pool, run_id: str) -> LedgerStatement:
    """Every Ledger row of the run, costs included, and their sum (retries count twice)."""
    async with pool.connection() as conn, conn.cursor(row_factory=class_row(LedgerEntry)) as cur:
        await cur.execute(_LEDGER, (run_id,))
        entries = await cur.fetchall()
    total = sum((e.total_cost or Decimal(0) for e in entries), Decimal(0))
    return LedgerStatement(run_id=run_id, entries=entries, total_cost=total)


async def pending_approvals(pool: Pool, tenant: str | None) -> list[Approval]:
    """Open checkpoints, oldest first; all tenants when `tenant` is None (operators)."""
    async with pool.connection() as conn, conn.cursor(row_factory=class_row(Approval)) as cur:
        await cur.execute(_APPROVALS, {"tenant": tenant})
        return await cur.fetchall()


async def run_summary(pool: Pool, run_id: str) -> RunSummary | None:
    async with pool.connection() as conn, conn.cursor(row_factory=class_row(RunSummary)) as cur:
        await cur.execute(_SUMMARY, (run_id,))
        return await cur.fetchone()
