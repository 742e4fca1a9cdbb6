"""Ledger appends per second through `EventStore.record`, beside a plain INSERT.

    python -m bench.bench_ledger [--events 2000]

Each row goes through the full recording path (head lock, key claim, hash,
ledger + charter + projections in one transaction) at 1, 10 and 50 concurrent
writers, both on one stream (every writer contends for the same chain head) and
on one stream per writer. The baseline INSERTs the same ledger rows, one per
autocommit statement, into an unconstrained copy of the table with no indexes,
in the same database and run. `txns/row`: PostgreSQL write transactions per
recorded row (concurrent `record` calls share a transaction: group commit). Uses
DATABASE_URL if set (in a fresh database), otherwise a throwaway embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from bench.breakdown import PgCounter
from boomerang.models.events import CostBreakdown, EventKind, RunEvent
from boomerang.store.chain import HASHED_COLUMNS, ledger_content, row_hash
from boomerang.store.embedded import start_embedded_postgres
from boomerang.store.migrate import apply_migrations
from boomerang.store.recorder import EventStore, open_pool

WRITERS = (1, 10, 50)
COST = CostBreakdown(
    gpu_seconds=Decimal("3.2"), gpu_type="A10G", gpu_cost=Decimal("0.0012"),
    llm_cost=Decimal("0.004"), provider="bench", model_name="bench-model", input_tokens=900,
)  # fmt: skip
_PLAIN_INSERT = sql.SQL("INSERT INTO bench_plain ({}) VALUES ({})").format(
    sql.SQL(", ").join(map(sql.Identifier, (*HASHED_COLUMNS, "row_hash"))),
    sql.SQL(", ").join(sql.Placeholder(c) for c in (*HASHED_COLUMNS, "row_hash")),
)


def _event(run_id: str, i: int) -> RunEvent:
    return RunEvent(
        event_key=f"{run_id}/task/{i}",
        run_id=run_id,
        tenant="bench",
        kind=EventKind.TASK_COMPLETED,
        occurred_at=datetime.now(UTC),
        message=f"task {i} done",
        task_type="inference",
        execution_time_s=1.5,
        cost=COST,
        details={"i": i},
    )


def _events(n: int, streams: int) -> list[RunEvent]:
    runs = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(streams)]
    return [_event(runs[i % streams], i) for i in range(n)]


async def _drive(writers: int, items: list[Any], job: Callable[[Any], Awaitable[None]]) -> float:
    """Run `job` over `items` with `writers` concurrent workers; returns items/second."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await job(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(writers)))
    return len(items) / (time.perf_counter() - start)


async def _bench(conninfo: str, n: int) -> None:
    await apply_migrations(conninfo)
    pool = await open_pool(conninfo, min_size=max(WRITERS), max_size=max(WRITERS))
    async with pool.connection() as conn:
        await conn.execute("CREATE TABLE bench_plain (LIKE ledger)")
    store = EventStore(pool)
    await store.record(_events(1, 1)[0])  # creates this month's partition

    async def plain(event: RunEvent) -> None:
        content = ledger_content(event, seq=1, prev_hash="0" * 64, recorded_at=datetime.now(UTC))
        params = {**content, "details": Jsonb(content["details"]), "row_hash": row_hash(content)}
        async with pool.connection() as conn:
            await conn.execute(_PLAIN_INSERT, params)

    async def record(event: RunEvent) -> None:
        await store.record(event)

    print(f"{'writers':>7} {'streams':>8} {'record/s':>10} {'plain/s':>10} {'ratio':>7} {'txns/row':>9}")
    for writers in WRITERS:
        for streams in sorted({1, writers}):
            pg = await PgCounter.start(pool)
            recorded = await _drive(writers, _events(n, streams), record)
            commits, _ = await pg.per_event()
            baseline = await _drive(writers, _events(n, streams), plain)
            print(f"{writers:>7} {streams:>8} {recorded:>10.0f} {baseline:>10.0f} "
                  f"{recorded / baseline:>7.2f} {commits:>9.2f}")  # fmt: skip
    await pool.close()


async def main(n: int) -> None:
    url = os.environ.get("DATABASE_URL")
    if url:
        name = f"boomerang_bench_{uuid.uuid4().hex[:8]}"
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            await _bench(make_conninfo(url, dbname=name), n)
        finally:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = await asyncio.to_thread(start_embedded_postgres, Path(tmp) / "pg")
        try:
            await _bench(server.conninfo, n)
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="rows per measurement")
    asyncio.run(main(parser.parse_args().events))
