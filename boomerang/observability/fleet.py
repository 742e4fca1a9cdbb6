"""Fleet-wide gauges read from Postgres at scrape time: what waits, and how close to expiry.

A gauge kept in one worker's memory would be wrong after a restart and partial with
two replicas; the approvals projection is exact for the whole fleet. The API serves
these (use `max()` across API replicas, never `sum()`).
"""

from __future__ import annotations

from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Gauge
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from boomerang.observability.labels import label

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]

_WAITING = """
SELECT checkpoint, count(*)::float8,
       MIN(EXTRACT(EPOCH FROM deadline - now()))::float8
FROM approvals WHERE status = 'pending' GROUP BY checkpoint
"""
_DEAD_LETTERS = "SELECT count(*)::float8 FROM webhook_dead_letters"


class FleetGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.waiting = Gauge(
            "boomerang_checkpoints_waiting",
            "Checkpoints open and waiting for a decision, fleet-wide.",
            ["checkpoint"],
            registry=registry,
        )
        self.deadline = Gauge(
            "boomerang_checkpoint_expiry_seconds",
            "Seconds until the soonest waiting checkpoint of this name expires (negative: overdue).",
            ["checkpoint"],
            registry=registry,
        )
        self.dead_letters = Gauge(
            "boomerang_dead_letters_stored",
            "Webhooks dead-lettered and kept for inspection.",
            registry=registry,
        )
        self.up = Gauge(
            "boomerang_fleet_gauges_up",
            "1 when the last read of the fleet gauges from Postgres worked.",
            registry=registry,
        )

    async def refresh(self, pool: Pool, *, timeout_s: float = 5.0) -> None:
        """Re-read every gauge; on a database error `boomerang_fleet_gauges_up` drops to 0."""
        try:
            async with pool.connection(timeout=timeout_s) as conn:
                rows = await (await conn.execute(_WAITING)).fetchall()
                dead = await (await conn.execute(_DEAD_LETTERS)).fetchone()
        except (psycopg.Error, PoolTimeout, OSError):
            self.up.set(0)  # the gauges keep their last values; this says they are stale
            return
        self.waiting.clear()
        self.deadline.clear()
        for checkpoint, count, seconds in rows:
            name = label(checkpoint)
            self.waiting.labels(name).inc(count)
            if seconds is not None:
                self.deadline.labels(name).set(seconds)
        self.dead_letters.set(dead[0] if dead else 0)
        self.up.set(1)
