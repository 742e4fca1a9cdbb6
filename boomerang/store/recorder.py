"""Record each `RunEvent` exactly once: Ledger row, Charter row and projections.

One transaction per event:

1. lock the stream's head row in `ledger_heads` (upserted on first use); this
   serializes appends to one chain, so concurrent writers can never fork it;
2. claim the event key in `ledger_keys` at seq = head + 1 (`recorded_at` never
   goes back along a stream); if the key is taken, roll back: a retried
   activity writes nothing and the chain does not move;
3. append the Ledger row at seq = head + 1 with its hash, move the head, insert
   the Charter row and update the projections.

Appends to different runs do not wait for each other. The pool is opened by the
caller (the worker's `main()`), which also closes it:

    pool = await open_pool(conninfo)
    store = EventStore(pool)
    written = await store.record(event)   # False: already recorded
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from boomerang.models.events import LEDGER_ONLY_KINDS, RunEvent
from boomerang.store.chain import GENESIS, HASHED_COLUMNS, ledger_content, row_hash
from boomerang.store.charter import CharterRow, charter_row
from boomerang.store.errors import InvalidEventError
from boomerang.store.pg_values import pg_text
from boomerang.store.projections import check_projectable, project

WRITER_ROLE = "boomerang_writer"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_LOCK_HEAD = """
INSERT INTO ledger_heads (stream, seq, row_hash, recorded_at) VALUES (%s, 0, %s, %s)
ON CONFLICT (stream) DO UPDATE SET stream = EXCLUDED.stream
RETURNING seq, row_hash, recorded_at
"""
# Runs right after _LOCK_HEAD in the same round trip, so it reads the locked head.
_CLAIM_KEY = """
INSERT INTO ledger_keys (event_key, stream, seq, recorded_at)
SELECT %(key)s, stream, seq + 1, GREATEST(%(now)s, recorded_at)
FROM ledger_heads WHERE stream = %(stream)s
ON CONFLICT (event_key) DO NOTHING
RETURNING seq, recorded_at
"""
_MOVE_HEAD = "UPDATE ledger_heads SET seq = %s, row_hash = %s, recorded_at = %s WHERE stream = %s"
_INSERT_LEDGER = sql.SQL("INSERT INTO ledger ({}) VALUES ({})").format(
    sql.SQL(", ").join(map(sql.Identifier, (*HASHED_COLUMNS, "row_hash"))),
    sql.SQL(", ").join(sql.Placeholder(c) for c in (*HASHED_COLUMNS, "row_hash")),
)
_CHARTER_COLUMNS = tuple(CharterRow.model_fields)
_INSERT_CHARTER = sql.SQL("INSERT INTO charter ({}) VALUES ({})").format(
    sql.SQL(", ").join(map(sql.Identifier, _CHARTER_COLUMNS)),
    sql.SQL(", ").join(sql.Placeholder(c) for c in _CHARTER_COLUMNS),
)


class _Duplicate(Exception):
    """The event key was already recorded; unwinds the transaction."""


async def open_pool(
    conninfo: str, *, min_size: int = 1, max_size: int = 10
) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    """An opened pool; close it with `await pool.close()` (or `async with pool`)."""
    if min_size < 0 or max_size < max(min_size, 1):
        raise ValueError(f"need 0 <= min_size <= max_size, 1 <= max_size; got {min_size}, {max_size}")
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        open=False,
        name="boomerang-store",
        # A connection is checked as it leaves the pool (one round trip) and replaced if
        # dead, so a PostgreSQL restart costs no request once the server is back.
        check=AsyncConnectionPool.check_connection,
    )
    await pool.open(wait=True)
    return pool


class EventStore:
    """Writes events to the Charter, the Ledger and the projections, once each.

    `writer_role` is assumed for every write (`SET LOCAL ROLE`), so the store
    holds no more rights than INSERT on the ledger even when the pool logs in as
    its owner; None keeps the login role (it must then hold the writer's grants).
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]],
        *,
        writer_role: str | None = WRITER_ROLE,
    ) -> None:
        self._pool = pool
        self._writer_role = writer_role
        self._months: set[str] = set()
        self._months_lock = asyncio.Lock()

    async def record(self, event: RunEvent) -> bool:
        """Write `event`; True if written now, False if its key was already recorded."""
        check_projectable(event)
        charter = charter_row(event)  # pure, so done before taking any lock
        await self._ensure_partitions()
        try:
            # Pipelined: lock + claim in one round trip, the writes + COMMIT in a second,
            # so the stream's head stays locked for as short a time as possible.
            async with self._pool.connection() as conn, conn.pipeline(), conn.transaction():
                await self._append(conn, event, charter)
        except _Duplicate:
            return False
        return True

    async def _append(self, conn: psycopg.AsyncConnection[Any], event: RunEvent, charter: CharterRow) -> None:
        stream = pg_text(event.run_id)
        key = pg_text(event.event_key)
        if self._writer_role is not None:
            await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self._writer_role)))
        head_cur = await conn.execute(_LOCK_HEAD, (stream, GENESIS, _EPOCH))
        claim_cur = await conn.execute(_CLAIM_KEY, {"key": key, "stream": stream, "now": datetime.now(UTC)})
        head = await head_cur.fetchone()
        assert head is not None  # INSERT ... RETURNING always yields the row
        claimed = await claim_cur.fetchone()
        if claimed is None:
            await self._raise_duplicate(claim_cur, key, stream)
            return
        seq, recorded_at = int(claimed[0]), claimed[1]
        content = ledger_content(event, seq=seq, prev_hash=str(head[1]), recorded_at=recorded_at)
        digest = row_hash(content)
        cur = conn.cursor()
        await cur.execute(
            _INSERT_LEDGER, {**content, "details": Jsonb(content["details"]), "row_hash": digest}
        )
        await cur.execute(_MOVE_HEAD, (seq, digest, recorded_at, stream))
        if event.kind not in LEDGER_ONLY_KINDS:
            await cur.execute(_INSERT_CHARTER, charter.model_dump())
            await project(cur, event)

    @staticmethod
    async def _raise_duplicate(cur: psycopg.AsyncCursor[Any], key: str, stream: str) -> None:
        await cur.execute("SELECT stream FROM ledger_keys WHERE event_key = %s", (key,))
        owner = await cur.fetchone()
        if owner is not None and owner[0] != stream:
            raise InvalidEventError(
                f"event key {key!r} was already recorded for another run; keys must be unique"
            )
        raise _Duplicate

    async def _ensure_partitions(self) -> None:
        """Create this month's and next month's ledger partitions, once per month."""
        now = datetime.now(UTC)
        month = now.strftime("%Y%m")
        if month in self._months:
            return
        async with self._months_lock:
            if month in self._months:
                return
            async with self._pool.connection() as conn, conn.transaction():
                if self._writer_role is not None:
                    await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self._writer_role)))
                await conn.execute(
                    "SELECT boomerang_ensure_ledger_partition(%s), boomerang_ensure_ledger_partition(%s)",
                    (now, now + timedelta(days=32)),
                )
            self._months.add(month)
