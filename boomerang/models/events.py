"""One event of a run, as the workflow describes it and the store records it.

The workflow builds a `RunEvent` with a deterministic `event_key`; the store writes
a Charter row (only the allow-listed, customer-safe fields), a Ledger row
(everything, costs included) and the projections, in one transaction. A second
delivery of the same key writes nothing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class EventKind(StrEnum):
    PIPELINE_STARTED = "pipeline_started"
    PIPELINE_COMPLETED = "pipeline_completed"
    PIPELINE_REJECTED = "pipeline_rejected"
    PIPELINE_EXPIRED = "pipeline_expired"
    PIPELINE_FAILED = "pipeline_failed"
    PIPELINE_CANCELLED = "pipeline_cancelled"
    PHASE_STARTED = "phase_started"
    PHASE_COMPLETED = "phase_completed"
    PHASE_FAILED = "phase_failed"
    CHECKPOINT_OPENED = "checkpoint_opened"
    CHECKPOINT_REMINDED = "checkpoint_reminded"
    CHECKPOINT_EXPIRING = "checkpoint_expiring"
    CHECKPOINT_DECIDED = "checkpoint_decided"
    CHECKPOINT_REFUSED = "checkpoint_refused"
    CHECKPOINT_EXPIRED = "checkpoint_expired"
    CHECKPOINT_CANCELLED = "checkpoint_cancelled"
    TASK_STARTED = "task_started"
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_CANCELLED = "task_cancelled"
    WEBHOOK_DELIVERED = "webhook_delivered"
    WEBHOOK_FAILED = "webhook_failed"
    BUDGET_REACHED = "budget_reached"
    # Sweeps write one row per batch (or per continue-as-new segment), never per item.
    SWEEP_STARTED = "sweep_started"
    SWEEP_BATCH_COMPLETED = "sweep_batch_completed"
    SWEEP_PROGRESS = "sweep_progress"
    SWEEP_COMPLETED = "sweep_completed"
    SWEEP_STOPPED = "sweep_stopped"
    SWEEP_CANCELLED = "sweep_cancelled"
    # One paid attempt of a compute call, with its cost: money spent twice shows twice.
    COMPUTE_ATTEMPT = "compute_attempt"
    # GPU command runs (`boomerang gpu exec`, workflows/gpu_run.py).
    GPU_RUN_STARTED = "gpu_run_started"
    GPU_RUN_COMPLETED = "gpu_run_completed"
    GPU_RUN_FAILED = "gpu_run_failed"
    GPU_RUN_CANCELLED = "gpu_run_cancelled"
    # A GPU function's warm policy changed (why, and what idling costs now): operator matter.
    WARM_POLICY_CHANGED = "warm_policy_changed"


# Internal bookkeeping: written to the Ledger only, never to the Charter.
LEDGER_ONLY_KINDS = frozenset({EventKind.COMPUTE_ATTEMPT, EventKind.WARM_POLICY_CHANGED})


class CostBreakdown(BaseModel):
    """What one attempt cost, in USD. Ledger only."""

    model_config = ConfigDict(frozen=True)

    gpu_seconds: Decimal = Decimal(0)
    gpu_type: str | None = None
    gpu_cost: Decimal = Decimal(0)
    cpu_cost: Decimal = Decimal(0)
    memory_cost: Decimal = Decimal(0)
    llm_cost: Decimal = Decimal(0)
    provider: str | None = None
    model_name: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    price_table_version: str | None = None

    @property
    def total_cost(self) -> Decimal:
        return self.gpu_cost + self.cpu_cost + self.memory_cost + self.llm_cost


class RunEvent(BaseModel):
    """A step of a run. Charter-safe fields first, Ledger-only fields after."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Deterministic: built by the workflow from its own state, so a retried
    # activity carries the same key and is deduplicated by the store.
    event_key: str = Field(min_length=1, max_length=400)
    run_id: str = Field(min_length=1, max_length=200)
    tenant: str = Field(min_length=1, max_length=200)
    kind: EventKind
    occurred_at: datetime

    # Customer-safe (may reach the Charter).
    status: str = Field(default="ok", max_length=64)
    phase: str | None = None
    checkpoint: str | None = None
    boomer_ang_id: str | None = None
    task_type: str | None = None
    execution_time_s: float | None = None
    message: str = Field(default="", max_length=2000)
    project_id: str | None = None
    deadline: datetime | None = None
    decision: str | None = None

    # Ledger only: never copied to the Charter.
    attempt: int = Field(default=1, ge=1)
    approver: str | None = None
    cost: CostBreakdown | None = None
    details: dict[str, JsonValue] = Field(default_factory=dict)


class RecordEventsInput(BaseModel):
    """Input of the `record_events` activity: a batch of a run's events, in order."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    events: tuple[RunEvent, ...]
