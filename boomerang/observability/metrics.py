"""Boomerang's own metrics, derived from the events it records.

Every checkpoint, decision, refusal, expiry, compute attempt (with its cost) and
webhook attempt is already a `RunEvent` that an activity writes to the Ledger,
exactly once by its event key. `ObservedEvents` wraps the worker's event store and
counts an event only when the store says it was written now, so a retried activity,
a replayed workflow or a second worker never counts it twice, and the metrics agree
with the Ledger. Workflow code stays free of metric calls (and of replay questions).

    metrics = WorkerMetrics(backend="modal", tenant_labels=True)
    events = ObservedEvents(EventStore(pool), metrics, pool=pool)
    prometheus_client.generate_latest(metrics.registry)

Labels are identifiers (function, checkpoint, tenant, outcome) passed through
`labels.label`; tenant labels read `all` when `tenant_labels` is off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from psycopg_pool import AsyncConnectionPool

from activities.records import BatchEventSink, EventSink
from boomerang.models.events import EventKind, RunEvent
from boomerang.observability.labels import ALL, label

log = structlog.get_logger(__name__)
Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]

_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
DECISION_BUCKETS = (
    1.0,
    10.0,
    _MINUTE,
    10 * _MINUTE,
    _HOUR,
    4 * _HOUR,
    12 * _HOUR,
    _DAY,
    2 * _DAY,
    4 * _DAY,
    7 * _DAY,
)
COMPUTE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, _MINUTE, 5 * _MINUTE, 15 * _MINUTE, _HOUR)
QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, _MINUTE, 5 * _MINUTE)

_PIPELINE_KINDS = {
    EventKind.PIPELINE_STARTED: "started",
    EventKind.PIPELINE_COMPLETED: "completed",
    EventKind.PIPELINE_REJECTED: "rejected",
    EventKind.PIPELINE_EXPIRED: "expired",
    EventKind.PIPELINE_FAILED: "failed",
}
_TASK_KINDS = {
    EventKind.TASK_STARTED: "started",
    EventKind.TASK_COMPLETED: "completed",
    EventKind.TASK_FAILED: "failed",
}
_OPEN_TO_DECIDED = """
SELECT EXTRACT(EPOCH FROM decided_at - opened_at)::float8 FROM approvals
WHERE run_id = %s AND checkpoint = %s AND decided_at IS NOT NULL
"""


def channel(via: object) -> str:
    """How a decision arrived: `client` (boomerang CLI, Python client, API, inbox),
    `update` and `signal` (Temporal CLI or UI), `expiry`."""
    text = str(via or "")
    if text.startswith("signal"):
        return "signal"
    return text if text in ("client", "update", "expiry") else "other"


class WorkerMetrics:
    """The worker's metrics in their own registry (tests run several workers in one process)."""

    def __init__(self, *, backend: str, tenant_labels: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.backend = label(backend)
        self.tenant_labels = tenant_labels
        r = self.registry
        self.checkpoints_opened = Counter(
            "boomerang_checkpoints_opened",
            "Checkpoint openings (a re-opening counts again).",
            ["checkpoint"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "boomerang_checkpoint_decision_seconds",
            "Time from a checkpoint opening to its decision.",
            ["checkpoint"],
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "boomerang_decisions",
            "Decisions applied, by channel and decision.",
            ["channel", "decision"],
            registry=r,
        )
        self.refused = Counter(
            "boomerang_refused_inputs",
            "Decisions refused (bad checkpoint, approver, option...).",
            ["channel"],
            registry=r,
        )
        self.expiries = Counter(
            "boomerang_checkpoint_expiries",
            "Checkpoints that expired with no decision.",
            ["checkpoint"],
            registry=r,
        )
        self.reminders = Counter(
            "boomerang_checkpoint_reminders", "Checkpoint reminders sent.", ["checkpoint"], registry=r
        )
        self.attempts = Counter(
            "boomerang_compute_attempts",
            "Compute attempts, by function, backend and outcome.",
            ["function", "backend", "outcome"],
            registry=r,
        )
        self.compute_seconds = Histogram(
            "boomerang_compute_duration_seconds",
            "How long a compute function ran (its own start to end).",
            ["function", "backend"],
            buckets=COMPUTE_BUCKETS,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "boomerang_compute_queue_wait_seconds",
            "From dispatch to the function starting (queue, cold start).",
            ["function", "backend"],
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.cold_starts = Counter(
            "boomerang_compute_cold_starts",
            "Calls that were the first in their process or container.",
            ["function", "backend"],
            registry=r,
        )
        self.spend = Counter(
            "boomerang_spend_usd",
            "Money spent on compute, USD (every attempt, as in the Ledger).",
            ["tenant", "function", "gpu"],
            registry=r,
        )
        self.gpu_seconds = Counter(
            "boomerang_gpu_seconds",
            "GPU seconds billed, by function and GPU type.",
            ["function", "gpu"],
            registry=r,
        )
        self.webhooks = Counter(
            "boomerang_webhook_deliveries", "Webhook delivery attempts, by outcome.", ["outcome"], registry=r
        )
        self.dead_letters = Counter(
            "boomerang_webhook_dead_letters", "Webhooks given up on (dead-lettered).", registry=r
        )
        self.pipelines = Counter(
            "boomerang_pipelines", "Pipeline runs started and finished, by status.", ["status"], registry=r
        )
        self.tasks = Counter(
            "boomerang_tasks", "Specialist tasks started and finished.", ["task_type", "status"], registry=r
        )
        self.phases = Counter(
            "boomerang_phases",
            "Pipeline phases finished, by phase and status.",
            ["phase", "status"],
            registry=r,
        )
        self.budget_reached = Counter(
            "boomerang_budget_reached", "Runs that stopped at their budget.", registry=r
        )

    def tenant(self, tenant: str) -> str:
        return label(tenant) if self.tenant_labels else ALL

    def observe(self, event: RunEvent, *, decision_s: float | None = None) -> None:
        """Count one newly recorded event."""
        kind = event.kind
        if kind is EventKind.COMPUTE_ATTEMPT:
            self._attempt(event)
        elif kind is EventKind.CHECKPOINT_OPENED:
            self.checkpoints_opened.labels(label(event.checkpoint)).inc()
        elif kind is EventKind.CHECKPOINT_DECIDED:
            self.decisions.labels(channel(event.details.get("via")), label(event.decision)).inc()
            if decision_s is not None:
                self.decision_seconds.labels(label(event.checkpoint)).observe(max(decision_s, 0.0))
        elif kind is EventKind.CHECKPOINT_REFUSED:
            self.refused.labels(channel(event.details.get("via"))).inc()
        elif kind is EventKind.CHECKPOINT_EXPIRED:
            self.expiries.labels(label(event.checkpoint)).inc()
        elif kind is EventKind.CHECKPOINT_REMINDED:
            self.reminders.labels(label(event.checkpoint)).inc()
        elif kind in (EventKind.WEBHOOK_DELIVERED, EventKind.WEBHOOK_FAILED):
            if event.status == "dead_lettered":
                self.dead_letters.inc()
            else:
                self.webhooks.labels(label(event.status)).inc()
        elif kind in _PIPELINE_KINDS:
            self.pipelines.labels(_PIPELINE_KINDS[kind]).inc()
        elif kind in _TASK_KINDS:
            self.tasks.labels(label(event.task_type), _TASK_KINDS[kind]).inc()
        elif kind in (EventKind.PHASE_COMPLETED, EventKind.PHASE_FAILED):
            self.phases.labels(label(event.phase), label(event.status)).inc()
        elif kind is EventKind.BUDGET_REACHED:
            self.budget_reached.inc()

    def _attempt(self, event: RunEvent) -> None:
        details = event.details
        function = label(details.get("function"))
        backend = label(details.get("runtime") or self.backend)
        self.attempts.labels(function, backend, label(event.status)).inc()
        if event.execution_time_s is not None:
            self.compute_seconds.labels(function, backend).observe(event.execution_time_s)
        queued = details.get("queued_s")
        if isinstance(queued, int | float):
            self.queue_seconds.labels(function, backend).observe(max(float(queued), 0.0))
        if details.get("cold_start") is True:
            self.cold_starts.labels(function, backend).inc()
        if event.cost is not None:
            gpu = label(event.cost.gpu_type)
            self.spend.labels(self.tenant(event.tenant), function, gpu).inc(float(event.cost.total_cost))
            if event.cost.gpu_seconds:
                self.gpu_seconds.labels(function, gpu).inc(float(event.cost.gpu_seconds))


class ObservedEvents:
    """An `EventSink` that counts each event the inner store writes now (never a duplicate)."""

    def __init__(self, inner: EventSink, metrics: WorkerMetrics, *, pool: Pool | None = None) -> None:
        self._inner = inner
        self._metrics = metrics
        self._pool = pool

    async def record(self, event: RunEvent) -> bool:
        written = await self._inner.record(event)
        if written:
            await self._observe(event)
        return written

    async def record_many(self, events: Sequence[RunEvent]) -> list[bool]:
        """One transaction for the batch when the inner store can; each event counted once."""
        if isinstance(self._inner, BatchEventSink):
            written = await self._inner.record_many(events)
        else:
            written = [await self._inner.record(event) for event in events]
        for event, new in zip(events, written, strict=True):
            if new:
                await self._observe(event)
        return written

    async def _observe(self, event: RunEvent) -> None:
        try:
            self._metrics.observe(event, decision_s=await self._decision_seconds(event))
        except Exception:  # metrics must never fail the write that already happened
            log.warning("metrics: could not count an event", kind=event.kind.value, exc_info=True)

    async def _decision_seconds(self, event: RunEvent) -> float | None:
        if event.kind is not EventKind.CHECKPOINT_DECIDED or self._pool is None:
            return None
        # The projection was written in the same transaction: its opening is the one decided.
        async with self._pool.connection() as conn:
            cur = await conn.execute(_OPEN_TO_DECIDED, (event.run_id, event.checkpoint))
            row = await cur.fetchone()
        return None if row is None or row[0] is None else float(row[0])
