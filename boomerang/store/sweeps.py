"""The `sweep_results` table: one row per sweep item, written exactly once (migration 0010)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from boomerang.models.sweeps import SweepResult
from boomerang.store.queries import Pool

_INSERT = """
INSERT INTO sweep_results (sweep_id, item_index, tenant, batch, params, status, output,
                           artifact_uri, error, cost_usd, attempts, seconds)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (sweep_id, item_index) DO NOTHING
"""
_RETURNING = "RETURNING item_index, cost_usd"
_COLUMNS = (
    "sweep_id, item_index, batch, params, status, output, artifact_uri, error, cost_usd, attempts, seconds"
)


def _values(tenant: str, row: SweepResult) -> tuple[object, ...]:
    return (
        row.sweep_id, row.item_index, tenant, row.batch, Jsonb(row.params), row.status,
        None if row.output is None else Jsonb(row.output), row.artifact_uri, row.error,
        row.cost_usd, row.attempts, row.seconds,
    )  # fmt: skip


class SweepResults:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record(self, tenant: str, row: SweepResult) -> SweepResult:
        """Insert the row unless one exists; return the row that is stored (the first one)."""
        async with self._pool.connection() as conn:
            await conn.execute(_INSERT, _values(tenant, row))
        stored = await self.get(row.sweep_id, row.item_index)
        assert stored is not None  # just written, and rows are never deleted
        return stored

    async def record_many(self, tenant: str, rows: Sequence[SweepResult]) -> list[SweepResult]:
        """`record` for several rows of one sweep in one transaction (one commit): the stored
        rows, in order (a row that existed before wins, as with `record`)."""
        if not rows:
            return []
        (sweep_id,) = {row.sweep_id for row in rows}
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor() as cur:
                await cur.executemany(
                    _INSERT + _RETURNING, [_values(tenant, r) for r in rows], returning=True
                )
                # The rows inserted now, as stored (the cost rounded to the column's scale).
                stored_cost: dict[int, Decimal] = {}
                while True:
                    for index, cost in await cur.fetchall():
                        stored_cost[int(index)] = cost
                    if not cur.nextset():
                        break
            # Rows that were there before are read back whole; a retried chunk's, typically.
            earlier = [r.item_index for r in rows if r.item_index not in stored_cost]
            found = await self._select_many(conn, sweep_id, earlier) if earlier else {}
        for r in rows:  # the first row of an index in the batch is the one inserted
            if r.item_index not in found:
                found[r.item_index] = r.model_copy(update={"cost_usd": stored_cost[r.item_index]})
        return [found[r.item_index] for r in rows]

    async def get_many(self, sweep_id: str, indices: Sequence[int]) -> dict[int, SweepResult]:
        """The stored rows among `indices`, by item index (one query)."""
        async with self._pool.connection() as conn:
            return await self._select_many(conn, sweep_id, indices)

    @staticmethod
    async def _select_many(
        conn: AsyncConnection[Any], sweep_id: str, indices: Sequence[int]
    ) -> dict[int, SweepResult]:
        async with conn.cursor(row_factory=class_row(SweepResult)) as cur:
            await cur.execute(
                f"SELECT {_COLUMNS} FROM sweep_results WHERE sweep_id = %s AND item_index = ANY(%s)",  # noqa: S608
                (sweep_id, list(indices)),
            )
            return {row.item_index: row for row in await cur.fetchall()}

    async def get(self, sweep_id: str, index: int) -> SweepResult | None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=class_row(SweepResult)) as cur:
            await cur.execute(
                f"SELECT {_COLUMNS} FROM sweep_results WHERE sweep_id = %s AND item_index = %s",  # noqa: S608
                (sweep_id, index),
            )
            return await cur.fetchone()

    async def rows(
        self, sweep_id: str, *, tenant: str | None = None, page: int = 1000
    ) -> AsyncIterator[SweepResult]:
        """Every row of the sweep by item index, read a page at a time (only `tenant`'s, if given)."""
        after = -1
        owned = "" if tenant is None else " AND tenant = %s"
        scope = () if tenant is None else (tenant,)
        while True:
            async with (
                self._pool.connection() as conn,
                conn.cursor(row_factory=class_row(SweepResult)) as cur,
            ):
                await cur.execute(
                    f"SELECT {_COLUMNS} FROM sweep_results WHERE sweep_id = %s{owned}"  # noqa: S608
                    " AND item_index > %s ORDER BY item_index LIMIT %s",
                    (sweep_id, *scope, after, page),
                )
                found = await cur.fetchall()
            for row in found:
                yield row
            if len(found) < page:
                return
            after = found[-1].item_index

    async def counts(self, sweep_id: str) -> dict[str, int]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT status, count(*) FROM sweep_results WHERE sweep_id = %s GROUP BY status", (sweep_id,)
            )
            return {str(s): int(n) for s, n in await cur.fetchall()}
