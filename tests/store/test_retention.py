"""Seven-year retention drops whole months, only where an anchor covers them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from boomerang.store.errors import RetentionError
from boomerang.store.integrity import anchor, verify, verify_against_anchor
from boomerang.store.migrate import apply_migrations
from boomerang.store.queries import ledger_for_run
from boomerang.store.recorder import EventStore, open_pool
from boomerang.store.retention import drop_expired_partitions, retention_cutoff
from tests.store import execute_as, make_event, new_run, paid

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
LATER = datetime.now(UTC) + timedelta(days=7 * 366 + 100)  # this month and next have expired


@pytest.fixture
async def own_pool(make_database: Callable[[], Awaitable[str]]) -> AsyncIterator[Pool]:
    """Retention drops whole months: it gets a database of its own."""
    conninfo = await make_database()
    await apply_migrations(conninfo)
    pool = await open_pool(conninfo, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def _runs(pool: Pool) -> list[str]:
    store = EventStore(pool)
    runs = [new_run(), new_run()]
    for run in runs:
        for n in (1, 2, 3):
            await store.record(make_event(run, n, cost=paid()))
    return runs


def test_cutoff_is_seven_years() -> None:
    assert retention_cutoff(datetime(2032, 2, 29, tzinfo=UTC)) == datetime(2025, 2, 28, tzinfo=UTC)


async def test_nothing_is_dropped_before_seven_years(own_pool: Pool) -> None:
    await _runs(own_pool)
    heads = await anchor(own_pool)
    assert await drop_expired_partitions(own_pool, now=datetime.now(UTC), anchored_heads=heads) == []


async def test_unanchored_months_are_kept(own_pool: Pool) -> None:
    runs = await _runs(own_pool)
    heads = [h for h in await anchor(own_pool) if h.stream == runs[0]]
    assert await drop_expired_partitions(own_pool, now=LATER, anchored_heads=heads) == []
    assert len((await ledger_for_run(own_pool, runs[1])).entries) == 3


async def test_anchored_expired_months_are_dropped(own_pool: Pool) -> None:
    runs = await _runs(own_pool)
    heads = await anchor(own_pool)
    dropped = await drop_expired_partitions(own_pool, now=LATER, anchored_heads=heads)
    assert dropped
    assert all(name.startswith("ledger_p") for name in dropped)
    assert (await ledger_for_run(own_pool, runs[0])).entries == []
    assert (await verify(own_pool)).ok
    assert (await verify_against_anchor(own_pool, heads)).ok

    store = EventStore(own_pool)  # a fresh store re-creates this month's partition
    assert not await store.record(make_event(runs[0], 1, cost=paid()))  # keys outlive rows
    assert await store.record(make_event(runs[0], 4))
    entries = (await ledger_for_run(own_pool, runs[0])).entries
    assert [e.seq for e in entries] == [4]
    report = await verify(own_pool, runs[0])
    assert report.ok, report.first_break


async def test_tampered_anchor_refuses_the_drop(own_pool: Pool) -> None:
    await _runs(own_pool)
    heads = await anchor(own_pool)
    forged = [heads[0].model_copy(update={"row_hash": "f" * 64}), *heads[1:]]
    with pytest.raises(RetentionError, match="anchor"):
        await drop_expired_partitions(own_pool, now=LATER, anchored_heads=forged)
    assert (await verify(own_pool)).rows_checked == 6


async def test_writer_cannot_drop_a_partition(own_pool: Pool) -> None:
    await _runs(own_pool)
    [(partition,)] = await execute_as(
        own_pool,
        None,
        "SELECT inhrelid::regclass::text FROM pg_inherits"
        " WHERE inhparent = 'ledger'::regclass ORDER BY 1 LIMIT 1",
    )
    query = sql.SQL("DROP TABLE {}").format(sql.Identifier(partition))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await execute_as(own_pool, "boomerang_writer", query)
