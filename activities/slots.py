"""In-flight limits that hold across every worker, granted fairly between tenants.

`ConcurrencyLimits` bounds one process; two worker replicas would double the load on
the compute provider, which is what broke the matrix seed (64 calls at once against a
deployment sized for 8: a quarter succeeded). `PostgresSlots` keeps the same limits
(per function, per GPU class, overall) in the one place every worker already shares,
the Boomerang database::

    slots = PostgresSlots(pool, ConcurrencyLimits(default=8, per_gpu={"A10G": 4}))
    async with slots.slot(function="crunch", gpu="A10G", tenant="acme"):
        ...  # at most 8 "crunch" calls and 4 on A10Gs, over all workers

Design, and why:

- **A queue table of leases** (`compute_slots`, migration 0009). A call inserts a row
  (waiting), then polls with a growing back-off (50 ms up to `poll_max_s`). Each poll
  is one scheduling round in a transaction under one advisory lock: reclaim rows past
  `expires_at` (their worker died), then grant waiting rows while the limits allow,
  then read its own row. Whoever polls grants for everybody, so a freed slot is handed
  on at the next poll of any waiter, not only of the one it goes to. Rows are leases:
  the holder renews `expires_at` every `lease_s / 3` while it waits or runs, so a
  SIGKILLed worker's slots come back `lease_s` later without anyone's help.
- **Fair between tenants**: a round grants, among the waiting calls that fit the
  limits, the one whose tenant holds the fewest slots now, oldest request first. A
  tenant with a thousand items queued and eight running yields the next free slot to
  a tenant with none running; tenants with equal shares alternate (max-min fairness).
- **Why a lock and not `SKIP LOCKED`**: limits are counts over rows of several kinds
  (function, GPU class, total) and fairness compares tenants, so a grant must see every
  row; `SKIP LOCKED` suits handing out independent rows. One advisory transaction lock
  serializes rounds of a few milliseconds each, which is ample for calls that run for
  seconds to hours; Temporal-native alternatives (a semaphore workflow) would put every
  acquire and release through a workflow's history.
- Every worker must configure the same limits (the same settings): a round applies
  the limits of the worker that runs it. Without a database (tests, scripts), the
  in-process `ConcurrencyLimits` stays the limiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, LiteralString

import psycopg
import structlog
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from activities.limits import ConcurrencyLimits, gpu_class
from boomerang.errors import BoomerangError

log = structlog.get_logger(__name__)

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]

# Any fixed 64-bit number: every worker's scheduling round takes this lock.
_LOCK_KEY = 0x626F6F6D736C6F74  # "boomslot"


@dataclass
class _Row:
    slot_id: str
    tenant: str
    function: str
    gpu: str | None
    requested_at: datetime
    granted: bool


class PostgresSlots:
    """Limits held in Postgres for all workers; see the module docstring.

    `lease_s`: how long a slot outlives its holder's last renewal (a dead worker's
    slots return after it); `poll_max_s`: the longest wait between two polls.
    `writer_role` is assumed for every statement, as the event store does.
    """

    def __init__(
        self,
        pool: Pool,
        limits: ConcurrencyLimits,
        *,
        lease_s: float = 30.0,
        poll_max_s: float = 1.0,
        writer_role: str | None = "boomerang_writer",
    ) -> None:
        if lease_s <= 0 or poll_max_s <= 0:
            raise ValueError("lease_s and poll_max_s must be positive")
        self._pool = pool
        self.limits = limits
        self._lease = timedelta(seconds=lease_s)
        self._poll_max_s = poll_max_s
        self._role = writer_role
        self.holder = f"{socket.gethostname()}:{os.getpid()}"

    @contextlib.asynccontextmanager
    async def slot(
        self, *, function: str, gpu: str | None = None, tenant: str | None = None
    ) -> AsyncIterator[None]:
        """Hold one slot for a call of `function` on `gpu` for `tenant` until the block exits."""
        if not self._limited(function, gpu):
            yield
            return
        slot_id = uuid.uuid4().hex
        await self._execute(
            "INSERT INTO compute_slots (slot_id, holder, tenant, function, gpu, requested_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, now(), now() + %s)",
            (slot_id, self.holder, tenant or "", function, gpu_class(gpu), self._lease),
        )
        renewing = asyncio.create_task(self._renew(slot_id))
        try:
            await self._wait_for_grant(slot_id)
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await asyncio.shield(self._release(slot_id))

    def _limited(self, function: str, gpu: str | None) -> bool:
        limits = self.limits
        return (
            limits.per_function.get(function, limits.default) is not None
            or gpu_class(gpu) in limits.per_gpu
            or limits.total is not None
        )

    async def _wait_for_grant(self, slot_id: str) -> None:
        delay = 0.05
        while not await self._round(slot_id):
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 (jitter, not secrecy)
            delay = min(delay * 1.5, self._poll_max_s)

    async def _round(self, slot_id: str) -> bool:
        """One scheduling round: reclaim, grant fairly, then say whether `slot_id` holds a slot."""
        async with self._pool.connection() as conn, conn.transaction():
            await self._as_writer(conn)
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            await conn.execute("DELETE FROM compute_slots WHERE expires_at < now()")
            cur = await conn.execute(
                "SELECT slot_id, tenant, function, gpu, requested_at, granted_at IS NOT NULL"
                " FROM compute_slots ORDER BY requested_at, slot_id"
            )
            rows = [_Row(*r) for r in await cur.fetchall()]
            grants = self.grants(rows)
            if grants:
                await conn.execute(
                    "UPDATE compute_slots SET granted_at = now() WHERE slot_id = ANY(%s)", (grants,)
                )
            mine = next((r for r in rows if r.slot_id == slot_id), None)
        if mine is None:
            raise SlotLostError(f"compute slot {slot_id} expired while waiting; is the database reachable?")
        return mine.granted or slot_id in grants

    def grants(self, rows: list[_Row]) -> list[str]:
        """Which waiting rows get a slot now: fewest held by their tenant first, then oldest."""
        by_function = Counter(r.function for r in rows if r.granted)
        by_gpu = Counter(r.gpu for r in rows if r.granted and r.gpu)
        by_tenant = Counter(r.tenant for r in rows if r.granted)
        total = sum(by_function.values())
        waiting = [r for r in rows if not r.granted]
        granted: list[str] = []
        while True:
            fits = [r for r in waiting if self._fits(r, by_function, by_gpu, total)]
            if not fits:
                return granted
            pick = min(fits, key=lambda r: (by_tenant[r.tenant], r.requested_at, r.slot_id))
            waiting.remove(pick)
            granted.append(pick.slot_id)
            by_function[pick.function] += 1
            by_tenant[pick.tenant] += 1
            total += 1
            if pick.gpu:
                by_gpu[pick.gpu] += 1

    def _fits(self, row: _Row, by_function: Counter[str], by_gpu: Counter[str], total: int) -> bool:
        limits = self.limits
        limit = limits.per_function.get(row.function, limits.default)
        if limit is not None and by_function[row.function] >= limit:
            return False
        gpu_limit = limits.per_gpu.get(row.gpu) if row.gpu else None
        if gpu_limit is not None and row.gpu and by_gpu[row.gpu] >= gpu_limit:
            return False
        return limits.total is None or total < limits.total

    async def _renew(self, slot_id: str) -> None:
        every = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                await self._execute(
                    "UPDATE compute_slots SET expires_at = now() + %s WHERE slot_id = %s",
                    (self._lease, slot_id),
                )
            except psycopg.Error as exc:
                # The call goes on; if the database stays away past the lease, its slot
                # is reclaimed and the limit may briefly be exceeded by this call.
                log.warning("compute slot not renewed", slot_id=slot_id, error=str(exc))

    async def _release(self, slot_id: str) -> None:
        try:
            await self._execute("DELETE FROM compute_slots WHERE slot_id = %s", (slot_id,))
        except psycopg.Error as exc:
            log.warning(
                "compute slot not released; it expires with its lease", slot_id=slot_id, error=str(exc)
            )

    async def _execute(self, query: LiteralString, params: tuple[Any, ...]) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await self._as_writer(conn)
            await conn.execute(query, params)

    async def _as_writer(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._role is not None:
            await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self._role)))


class SlotLostError(BoomerangError):
    """A waiting call's slot row was reclaimed (its renewals did not reach the database)."""
