"""Where a benchmark's time goes, printed beside its ratios so the next regression shows.

    cost = await Breakdown.of(client, workflow_ids)        # from the runs' histories
    pg = await PgCounter.start(pool); ...; txns = await pg.per_event()

Per run (children included): workflow tasks, activity tasks, local activities, child
workflows. Per Ledger row written while the counter ran: PostgreSQL write transactions
in the database (transaction ids assigned: recording, slots, budget; read-only checks
take none).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

LOCAL_ACTIVITY_MARKER = "core_local_activity"
# The next transaction id to be assigned (reading it assigns none), and the rows.
_COUNTS = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, (SELECT count(*) FROM ledger)"


@dataclass(frozen=True)
class Breakdown:
    runs: int
    workflow_tasks: float
    activities: float
    local_activities: float
    children: float

    @classmethod
    async def of(cls, client: Client, workflow_ids: Iterable[str]) -> Breakdown:
        totals: Counter[str] = Counter()
        ids = list(workflow_ids)
        pending = list(ids)
        while pending:
            wid = pending.pop()
            history = await client.get_workflow_handle(wid).fetch_history()
            for event in history.events:
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                    totals["wft"] += 1
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    totals["act"] += 1
                elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                    totals["local"] += (
                        event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
                    )
                elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                    totals["child"] += 1
                    pending.append(
                        event.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
                    )
        n = max(len(ids), 1)
        return cls(len(ids), totals["wft"] / n, totals["act"] / n, totals["local"] / n, totals["child"] / n)

    def line(self, system: str) -> str:
        return (
            f"  {system}: per run {self.workflow_tasks:.1f} workflow tasks, "
            f"{self.activities:.1f} activities, "
            f"{self.local_activities:.1f} local activities, {self.children:.1f} child workflows "
            f"(over {self.runs} runs)"
        )


@dataclass
class PgCounter:
    """PostgreSQL write transactions per Ledger row between `start` and `per_event`."""

    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]
    commits: int = 0
    rows: int = 0

    @classmethod
    async def start(cls, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]) -> PgCounter:
        counter = cls(pool)
        counter.commits, counter.rows = await counter._read()
        return counter

    async def _read(self) -> tuple[int, int]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(_COUNTS)
            row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    async def per_event(self) -> tuple[float, int]:
        """(write transactions per Ledger row, Ledger rows) since `start`."""
        xids, rows = await self._read()
        written = rows - self.rows
        return (xids - self.commits) / max(written, 1), written
