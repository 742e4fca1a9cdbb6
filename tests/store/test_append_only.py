"""The Ledger refuses changes, and `verify` names the row when a superuser forces one."""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from boomerang.store.chain import ledger_content, row_hash
from boomerang.store.integrity import BreakReason, anchor, verify, verify_against_anchor
from boomerang.store.recorder import EventStore
from tests.store import execute_as, make_event, new_run, paid

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


async def _run_of(event_store: EventStore, n: int = 5) -> str:
    run = new_run()
    for i in range(1, n + 1):
        await event_store.record(make_event(run, i, cost=paid()))
    return run


async def _tamper(pool: Pool, query: LiteralString, params: tuple[Any, ...]) -> None:
    """What only a superuser can do: switch the triggers off for one session."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(query, params)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger SET gpu_cost = 0 WHERE stream = %s",
        "DELETE FROM ledger WHERE stream = %s",
        "UPDATE ledger_keys SET seq = 99 WHERE stream = %s",
        "DELETE FROM ledger_keys WHERE stream = %s",
    ],
)
@pytest.mark.parametrize("role", ["boomerang_writer", None])
async def test_changes_are_refused(
    store_pool: Pool, event_store: EventStore, statement: LiteralString, role: str | None
) -> None:
    """The writer lacks the grant; the owner (superuser here) is stopped by the trigger."""
    run = await _run_of(event_store, 1)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await execute_as(store_pool, role, statement, (run,))


@pytest.mark.parametrize("table", ["ledger", "ledger_keys"])
@pytest.mark.parametrize("role", ["boomerang_writer", None])
async def test_truncate_is_refused(store_pool: Pool, table: str, role: str | None) -> None:
    query = sql.SQL("TRUNCATE {}").format(sql.Identifier(table))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await execute_as(store_pool, role, query)


async def test_truncating_a_partition_is_refused(store_pool: Pool, event_store: EventStore) -> None:
    await _run_of(event_store, 1)
    async with store_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'ledger'::regclass LIMIT 1"
        )
        row = await cur.fetchone()
        assert row is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            await conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(row[0])))


async def test_edit_is_named(store_pool: Pool, event_store: EventStore) -> None:
    run = await _run_of(event_store)
    await _tamper(store_pool, "UPDATE ledger SET gpu_cost = 0 WHERE stream = %s AND seq = 3", (run,))
    report = await verify(store_pool, run)
    assert report.first_break is not None
    assert (report.first_break.seq, report.first_break.reason) == (3, BreakReason.HASH_MISMATCH)
    assert report.first_break.event_key == f"{run}/task_completed/3"


async def test_deleted_row_is_named(store_pool: Pool, event_store: EventStore) -> None:
    run = await _run_of(event_store)
    await _tamper(store_pool, "DELETE FROM ledger WHERE stream = %s AND seq = 2", (run,))
    broken = (await verify(store_pool, run)).first_break
    assert broken is not None
    assert (broken.seq, broken.reason, broken.event_key) == (
        2, BreakReason.MISSING_SEQ, f"{run}/task_completed/2",
    )  # fmt: skip


async def test_deleted_tail_is_named(store_pool: Pool, event_store: EventStore) -> None:
    run = await _run_of(event_store)
    await _tamper(store_pool, "DELETE FROM ledger WHERE stream = %s AND seq = 5", (run,))
    broken = (await verify(store_pool, run)).first_break
    assert broken is not None
    assert (broken.seq, broken.reason) == (5, BreakReason.MISSING_SEQ)


async def test_swapped_rows_are_named(store_pool: Pool, event_store: EventStore) -> None:
    run = await _run_of(event_store)
    await _tamper(
        store_pool,
        "UPDATE ledger SET seq = CASE seq WHEN 2 THEN 4 ELSE 2 END WHERE stream = %s AND seq IN (2, 4)",
        (run,),
    )
    broken = (await verify(store_pool, run)).first_break
    assert broken is not None
    assert (broken.seq, broken.reason) == (2, BreakReason.SWAPPED)
    assert broken.event_key == f"{run}/task_completed/4"


async def test_all_streams_verified_and_break_reported(store_pool: Pool, event_store: EventStore) -> None:
    good, bad = await _run_of(event_store, 2), await _run_of(event_store, 2)
    await _tamper(store_pool, "UPDATE ledger SET message = 'x' WHERE stream = %s AND seq = 1", (bad,))
    report = await verify(store_pool)
    broken = {b.stream for b in report.breaks}
    assert bad in broken
    assert good not in broken


async def test_rewritten_chain_passes_verify_but_not_the_anchor(
    store_pool: Pool, event_store: EventStore
) -> None:
    """A superuser who recomputes every hash defeats `verify`; an exported head does not."""
    run = await _run_of(event_store, 3)
    heads = [h for h in await anchor(store_pool) if h.stream == run]
    assert (await verify_against_anchor(store_pool, heads)).ok

    # Rewrite seq 3 with a cheaper cost and a freshly computed, valid hash.
    async with store_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT prev_hash, recorded_at FROM ledger WHERE stream = %s AND seq = 3", (run,)
        )
        row = await cur.fetchone()
    assert row is not None
    forged_event = make_event(run, 3, cost=paid(gpu="0.01"))
    forged = ledger_content(forged_event, seq=3, prev_hash=row[0], recorded_at=row[1])
    digest = row_hash(forged)
    await _tamper(
        store_pool,
        "UPDATE ledger SET gpu_cost = 0.01, total_cost = 0.26, row_hash = %s WHERE stream = %s AND seq = 3",
        (digest, run),
    )
    await _tamper(store_pool, "UPDATE ledger_heads SET row_hash = %s WHERE stream = %s", (digest, run))
    assert (await verify(store_pool, run)).ok
    broken = (await verify_against_anchor(store_pool, heads)).first_break
    assert broken is not None
    assert (broken.seq, broken.reason) == (3, BreakReason.ANCHOR_MISMATCH)
