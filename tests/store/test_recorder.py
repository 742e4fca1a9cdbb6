"""Exactly once: one Ledger row and one Charter row per event key, chains never fork."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from boomerang.models.events import EventKind
from boomerang.store.errors import InvalidEventError
from boomerang.store.integrity import verify
from boomerang.store.queries import ledger_for_run, pending_approvals, run_summary
from boomerang.store.recorder import EventStore, open_pool
from tests.store import make_event, new_run, paid

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


async def _counts(pool: Pool, run_id: str) -> tuple[int, int, int]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM ledger WHERE stream = %s),"
            " (SELECT count(*) FROM charter WHERE run_id = %s),"
            " (SELECT seq FROM ledger_heads WHERE stream = %s)",
            (run_id, run_id, run_id),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2] or 0)


async def test_concurrent_duplicates_write_once(store_pool: Pool, event_store: EventStore) -> None:
    run = new_run()
    event = make_event(run, 1)
    results = await asyncio.gather(event_store.record(event), event_store.record(event))
    assert sorted(results) == [False, True]
    assert await _counts(store_pool, run) == (1, 1, 1)


async def test_retry_does_not_advance_the_chain(store_pool: Pool, event_store: EventStore) -> None:
    run = new_run()
    first, second = make_event(run, 1), make_event(run, 2)
    assert await event_store.record(first)
    assert not await event_store.record(first)
    assert await event_store.record(second)
    assert not await event_store.record(second)
    assert await _counts(store_pool, run) == (2, 2, 2)
    statement = await ledger_for_run(store_pool, run)
    assert [e.seq for e in statement.entries] == [1, 2]
    assert (await verify(store_pool, run)).ok


async def test_fifty_writers_make_one_valid_chain(pg_conninfo: str) -> None:
    run = new_run()
    pool = await open_pool(pg_conninfo, min_size=10, max_size=50)
    try:
        store = EventStore(pool)
        written = await asyncio.gather(*(store.record(make_event(run, n)) for n in range(50)))
        assert all(written)
        statement = await ledger_for_run(pool, run)
        assert [e.seq for e in statement.entries] == list(range(1, 51))
        report = await verify(pool, run)
        assert report.ok, report.first_break
        assert report.rows_checked == 50
    finally:
        await pool.close()


async def test_two_paid_attempts_are_two_rows_summed(store_pool: Pool, event_store: EventStore) -> None:
    run = new_run()
    for attempt in (1, 2):
        event = make_event(
            run, attempt, event_key=f"{run}/task/t1/attempt/{attempt}", attempt=attempt, cost=paid()
        )
        assert await event_store.record(event)
    statement = await ledger_for_run(store_pool, run)
    assert [e.attempt for e in statement.entries] == [1, 2]
    assert statement.total_cost == Decimal("1.50")


async def test_key_reused_by_another_run_is_an_error(event_store: EventStore) -> None:
    event = make_event(new_run(), 1)
    await event_store.record(event)
    clash = event.model_copy(update={"run_id": new_run()})
    with pytest.raises(InvalidEventError, match="another run"):
        await event_store.record(clash)


async def test_unknown_decision_is_refused_before_writing(event_store: EventStore) -> None:
    event = make_event(new_run(), 1, EventKind.CHECKPOINT_DECIDED, checkpoint="gate", decision="maybe")
    with pytest.raises(InvalidEventError, match="decision"):
        await event_store.record(event)


async def test_projections_follow_the_run(store_pool: Pool, event_store: EventStore) -> None:
    run, tenant = new_run(), "tenant-proj"
    steps = [
        (EventKind.PIPELINE_STARTED, {"task_type": "validation", "project_id": "p1"}),
        (EventKind.PHASE_STARTED, {"phase": "desirability"}),
        (EventKind.CHECKPOINT_OPENED, {"checkpoint": "gate-1", "phase": "desirability"}),
    ]
    for n, (kind, extra) in enumerate(steps):
        await event_store.record(make_event(run, n, kind, tenant=tenant, **extra))
    summary = await run_summary(store_pool, run)
    assert summary is not None
    assert (summary.status, summary.current_phase, summary.kind) == (
        "awaiting_approval", "desirability", "validation",
    )  # fmt: skip
    assert summary.pending_approvals == 1
    pending = await pending_approvals(store_pool, tenant)
    assert [(a.run_id, a.checkpoint) for a in pending] == [(run, "gate-1")]
    assert await pending_approvals(store_pool, "tenant-nobody") == []

    await event_store.record(
        make_event(run, 9, EventKind.CHECKPOINT_DECIDED, tenant=tenant, checkpoint="gate-1",
                   decision="approve", approver="alice")
    )  # fmt: skip
    await event_store.record(make_event(run, 10, EventKind.PIPELINE_COMPLETED, tenant=tenant))
    await event_store.record(make_event(run, 11, EventKind.PHASE_STARTED, tenant=tenant, phase="late"))
    summary = await run_summary(store_pool, run)
    assert summary is not None
    assert (summary.status, summary.current_phase) == ("completed", "desirability")
    assert summary.completed_at is not None
    assert await pending_approvals(store_pool, tenant) == []
    async with store_pool.connection() as conn:
        cur = await conn.execute("SELECT status, decided_by FROM approvals WHERE run_id = %s", (run,))
        assert await cur.fetchone() == ("approved", "alice")
