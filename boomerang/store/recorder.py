"""Record each `RunEvent` exactly once: Ledger row, Charter row and projections.

Events are written in batches, one transaction per batch (group commit): `record`
and `record_many` queue their events and a single writer per store takes everything
queued so far, so concurrent writers share one commit instead of queueing on a chain
head for a commit each. In that transaction, for each stream in sorted order (so two
stores never wait on each other's locks in a cycle):

1. lock the stream's head row in `ledger_heads` (upserted on first use); this
   serializes appends to one chain, so concurrent writers can never fork it;
2. find which of the batch's keys are already recorded: those write nothing, so a
   retried activity writes nothing and the chain does not move;
3. claim the new keys in `ledger_keys` at head + 1, + 2, ... in queue order
   (`recorded_at` never goes back along a stream), append the Ledger rows with their
   hashes, move the head once, insert the Charter rows and update the projections.

A caller returns once its event's transaction has committed. A batch that fails on
one bad event is retried event by event, so the bad one fails alone. Appends to
different runs do not wait for each other beyond sharing a commit. The pool is opened
by the caller (the worker's `main()`), which also closes it:

    pool = await open_pool(conninfo)
    store = EventStore(pool)
    written = await store.record(event)   # False: already recorded
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

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
_KNOWN_KEYS = "SELECT event_key, stream FROM ledger_keys WHERE event_key = ANY(%s)"
_CLAIM_KEY = "INSERT INTO ledger_keys (event_key, stream, seq, recorded_at) VALUES (%s, %s, %s, %s)"
_MOVE_HEAD = "UPDATE ledger_heads SET seq = %s, row_hash = %s, recorded_at = %s WHERE stream = %s"


def _rendered(query: sql.Composed) -> sql.SQL:
    """`query` rendered once: a composed one is rendered again at every execute (about 35 us
    for the ledger's 35 columns, a tenth of a row's cost in a sweep's busiest loop)."""
    return sql.SQL(query.as_string())


_INSERT_LEDGER = _rendered(
    sql.SQL("INSERT INTO ledger ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, (*HASHED_COLUMNS, "row_hash"))),
        sql.SQL(", ").join(sql.Placeholder(c) for c in (*HASHED_COLUMNS, "row_hash")),
    )
)
_CHARTER_COLUMNS = tuple(CharterRow.model_fields)
_INSERT_CHARTER = _rendered(
    sql.SQL("INSERT INTO charter ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, _CHARTER_COLUMNS)),
        sql.SQL(", ").join(sql.Placeholder(c) for c in _CHARTER_COLUMNS),
    )
)


# Events in one transaction at most: bounds how long a batch holds its heads' locks.
MAX_BATCH = 500


class _Queued:
    __slots__ = ("event", "future")

    def __init__(self, event: RunEvent, future: asyncio.Future[bool]) -> None:
        self.event = event
        self.future = future


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
        self._queue: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, event: RunEvent) -> bool:
        """Write `event`; True if written now, False if its key was already recorded."""
        return (await self.record_many((event,)))[0]

    async def record_many(self, events: Sequence[RunEvent]) -> list[bool]:
        """Write `events` in order; for each, True if written now, False if already recorded.

        Raises the first event's error if any failed (the others are written or not
        on their own merits, as with one `record` each).
        """
        for event in events:
            check_projectable(event)
        loop = asyncio.get_running_loop()
        queued = [_Queued(event, loop.create_future()) for event in events]
        self._queue.extend(queued)
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = asyncio.create_task(self._write_queued())
        outcomes = await asyncio.gather(*(q.future for q in queued), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return [bool(o) for o in outcomes]

    async def _write_queued(self) -> None:
        """Write whatever is queued, a transaction per batch, until the queue is empty."""
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                written = await self._write(batch)
            except (InvalidEventError, psycopg.IntegrityError, psycopg.DataError) as exc:
                if len(batch) == 1:
                    settle(batch[0].future, exc)
                    continue
                for one in batch:  # let the bad event fail alone
                    try:
                        settle(one.future, (await self._write([one]))[0])
                    except Exception as single:
                        settle(one.future, single)
                continue
            except BaseException as exc:
                for one in batch:
                    settle(one.future, exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for one, was_new in zip(batch, written, strict=True):
                settle(one.future, was_new)

    async def _write(self, batch: Sequence[_Queued]) -> list[bool]:
        await self._ensure_partitions()
        events = [q.event for q in batch]
        # Pure, so done before taking any lock.
        charters = [None if e.kind in LEDGER_ONLY_KINDS else charter_row(e) for e in events]
        by_stream: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            by_stream.setdefault(pg_text(event.run_id), []).append(i)
        keys = [pg_text(e.event_key) for e in events]
        # Pipelined: the locks + the key lookup in one round trip, the writes + COMMIT in
        # a second, so the heads stay locked for as short a time as possible.
        async with self._pool.connection() as conn, conn.pipeline(), conn.transaction():
            if self._writer_role is not None:
                await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self._writer_role)))
            heads = {
                stream: await conn.execute(_LOCK_HEAD, (stream, GENESIS, _EPOCH))
                for stream in sorted(by_stream)
            }
            known_cur = await conn.execute(_KNOWN_KEYS, (sorted(set(keys)),))
            known = {str(k): str(s) for k, s in await known_cur.fetchall()}
            now = datetime.now(UTC)
            written = [False] * len(events)
            claims: list[tuple[str, str, int, datetime]] = []
            rows: list[dict[str, Any]] = []
            moves: list[tuple[int, str, datetime, str]] = []
            for stream, cur_head in heads.items():
                head = await cur_head.fetchone()
                assert head is not None  # INSERT ... RETURNING always yields the row
                seq, prev, recorded_at = int(head[0]), str(head[1]), max(now, head[2])
                for i in by_stream[stream]:
                    owner = known.get(keys[i])
                    if owner is not None:
                        if owner != stream:
                            raise InvalidEventError(
                                f"event key {keys[i]!r} was already recorded for another run; "
                                "keys must be unique"
                            )
                        continue  # recorded before, or earlier in this batch
                    known[keys[i]] = stream
                    seq += 1
                    content = ledger_content(events[i], seq=seq, prev_hash=prev, recorded_at=recorded_at)
                    prev = row_hash(content)
                    claims.append((keys[i], stream, seq, recorded_at))
                    rows.append({**content, "details": Jsonb(content["details"]), "row_hash": prev})
                    written[i] = True
                if seq > int(head[0]):
                    moves.append((seq, prev, recorded_at, stream))
            # One statement per table for the whole batch (rows in chain order), then the
            # projections in the order things happened: a tenth of the per-row executes.
            cur = conn.cursor()
            if claims:
                await cur.executemany(_CLAIM_KEY, claims)
                await cur.executemany(_INSERT_LEDGER, rows)
            # Streams in sorted order, as their heads were locked: the projections' row
            # locks are then taken in one order by every store too.
            shown = [
                (events[i], charter)
                for stream in heads
                for i in by_stream[stream]
                if written[i] and (charter := charters[i]) is not None
            ]
            if shown:
                await cur.executemany(_INSERT_CHARTER, [charter.model_dump() for _, charter in shown])
                for event, _ in shown:
                    await project(cur, event)
            if moves:
                await cur.executemany(_MOVE_HEAD, moves)
        return written

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


T = TypeVar("T")


def settle(future: asyncio.Future[T], outcome: T | BaseException) -> None:
    """Give a queued write's caller its outcome (group commits here and in `activities`)."""
    if future.done():  # its caller was cancelled; the write stands (it is idempotent)
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
