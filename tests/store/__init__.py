"""Tests of the Charter, the Ledger and the projections, on a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from boomerang.models.events import CostBreakdown, EventKind, RunEvent


def new_run() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def make_event(run_id: str, n: int, kind: EventKind = EventKind.TASK_COMPLETED, **kw: Any) -> RunEvent:
    """Event number `n` of `run_id`; key derived from both, as a workflow would."""
    fields: dict[str, Any] = {
        "event_key": f"{run_id}/{kind.value}/{n}",
        "run_id": run_id,
        "tenant": "tenant-a",
        "kind": kind,
        "occurred_at": datetime(2025, 1, 1, tzinfo=UTC),
        "message": f"step {n}",
    }
    fields.update(kw)
    return RunEvent(**fields)


def paid(gpu: str = "0.50", llm: str = "0.25") -> CostBreakdown:
    return CostBreakdown(
        gpu_seconds=Decimal("12.5"),
        gpu_type="H100",
        gpu_cost=Decimal(gpu),
        llm_cost=Decimal(llm),
        provider="acme-llm",
        model_name="giant-model-7",
        input_tokens=1000,
        output_tokens=200,
        price_table_version="2025-01",
    )


async def execute_as(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]],
    role: str | None,
    query: sql.Composed | sql.SQL | LiteralString,
    params: tuple[Any, ...] = (),
) -> list[tuple[Any, ...]]:
    """Run `query` in its own transaction as `role` (None: the login role, a superuser here)."""
    async with pool.connection() as conn, conn.transaction():
        if role is not None:
            await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []
