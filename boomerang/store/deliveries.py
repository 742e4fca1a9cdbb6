"""Webhook bookkeeping in Postgres: delivery attempts, dead letters, received ids.

    store = DeliveryStore(pool)
    await store.record_attempt(attempt)           # once per (webhook_id, attempt)
    await store.dead_letter(letter)               # once per webhook_id
    async with store.claim_receipt(webhook_id, source="modal") as fresh:
        if fresh: ...                             # first time: act; an error un-claims it

Writes run as `boomerang_writer`, like the Charter and Ledger, so the worker's
rights stay INSERT-only on history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, JsonValue

from boomerang.store.pg_values import pg_json, pg_text
from boomerang.store.recorder import WRITER_ROLE

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
# Longer than the signature tolerance on both sides, with room for clock skew.
RECEIPT_TTL = timedelta(hours=1)


class DeliveryAttempt(BaseModel):
    model_config = ConfigDict(frozen=True)

    webhook_id: str
    run_id: str
    tenant: str
    url: str
    event: str
    attempt: int
    status: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None
    at: datetime | None = None


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True)

    webhook_id: str
    run_id: str
    tenant: str
    url: str
    event: str
    attempts: int
    last_status_code: int | None
    reason: str
    body: JsonValue
    dead_at: datetime | None = None


_ATTEMPT_COLUMNS = tuple(c for c in DeliveryAttempt.model_fields if c != "at")
_INSERT_ATTEMPT = sql.SQL("INSERT INTO webhook_deliveries ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
    sql.SQL(", ").join(map(sql.Identifier, _ATTEMPT_COLUMNS)),
    sql.SQL(", ").join(sql.Placeholder(c) for c in _ATTEMPT_COLUMNS),
)
_LETTER_COLUMNS = tuple(c for c in DeadLetter.model_fields if c != "dead_at")
_INSERT_LETTER = sql.SQL("INSERT INTO webhook_dead_letters ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
    sql.SQL(", ").join(map(sql.Identifier, _LETTER_COLUMNS)),
    sql.SQL(", ").join(sql.Placeholder(c) for c in _LETTER_COLUMNS),
)
_SELECT_ATTEMPTS = sql.SQL("SELECT {} FROM webhook_deliveries WHERE {} = %s ORDER BY at, attempt")
_SELECT_LETTERS = sql.SQL(
    "SELECT {} FROM webhook_dead_letters WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s)"
    " AND (%(run_id)s::text IS NULL OR run_id = %(run_id)s) ORDER BY dead_at DESC LIMIT %(limit)s"
).format(sql.SQL(", ").join(map(sql.Identifier, DeadLetter.model_fields)))


class DeliveryStore:
    def __init__(self, pool: Pool, *, writer_role: str | None = WRITER_ROLE) -> None:
        self._pool = pool
        self._role = writer_role

    async def _as_writer(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._role is not None:
            await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self._role)))

    async def record_attempt(self, attempt: DeliveryAttempt) -> bool:
        """Keep one attempt; False when that attempt was already recorded."""
        row = attempt.model_dump(include=set(_ATTEMPT_COLUMNS))
        row.update({k: pg_text(v) for k, v in row.items() if isinstance(v, str)})
        async with self._pool.connection() as conn, conn.transaction():
            await self._as_writer(conn)
            cur = await conn.execute(_INSERT_ATTEMPT, row)
            return cur.rowcount == 1

    async def dead_letter(self, letter: DeadLetter) -> bool:
        """Keep a delivery that gave up; False when it was already dead-lettered."""
        row = letter.model_dump(include=set(_LETTER_COLUMNS))
        row.update({k: pg_text(v) for k, v in row.items() if isinstance(v, str)})
        row["body"] = Jsonb(pg_json(letter.body))
        async with self._pool.connection() as conn, conn.transaction():
            await self._as_writer(conn)
            cur = await conn.execute(_INSERT_LETTER, row)
            return cur.rowcount == 1

    @asynccontextmanager
    async def claim_receipt(self, webhook_id: str, *, source: str) -> AsyncIterator[bool]:
        """Claim a received id for the length of the block: True the first time only.

        The claim commits when the block ends normally; an exception rolls it back,
        so a sender's retry after a failure here is processed instead of dropped.
        """
        async with self._pool.connection() as conn, conn.transaction():
            await self._as_writer(conn)
            await conn.execute("DELETE FROM webhook_receipts WHERE received_at < now() - %s", (RECEIPT_TTL,))
            cur = await conn.execute(
                "INSERT INTO webhook_receipts (webhook_id, source) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (pg_text(webhook_id), source),
            )
            yield cur.rowcount == 1

    async def attempts(
        self, *, webhook_id: str | None = None, run_id: str | None = None
    ) -> list[DeliveryAttempt]:
        """Every recorded attempt of one webhook, or of every webhook of one run."""
        column, value = ("webhook_id", webhook_id) if webhook_id is not None else ("run_id", run_id)
        if value is None:
            raise ValueError("give webhook_id or run_id")
        query = _SELECT_ATTEMPTS.format(
            sql.SQL(", ").join(map(sql.Identifier, DeliveryAttempt.model_fields)), sql.Identifier(column)
        )
        async with (
            self._pool.connection() as conn,
            conn.cursor(row_factory=class_row(DeliveryAttempt)) as cur,
        ):
            await cur.execute(query, (value,))
            return await cur.fetchall()

    async def dead_letters(
        self, *, tenant: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Deliveries that gave up, newest first; every tenant when `tenant` is None (operators)."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(DeadLetter)) as cur:
            await cur.execute(_SELECT_LETTERS, {"tenant": tenant, "run_id": run_id, "limit": limit})
            return await cur.fetchall()
