"""Decisions on checkpoints, and what a run reports about them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from boomerang.models.cancel import CancelRecord
from boomerang.models.pipeline import Decision


class DecisionInput(BaseModel):
    """One decision, as sent by a person through any front door.

    The same JSON object works for the `decide` update, the `approve` / `reject` /
    `decide` signals, the Python client and the HTTP API.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: str = Field(min_length=1, max_length=64)
    approver: str = Field(min_length=1, max_length=200)
    decision: Decision = Decision.APPROVE
    comment: str | None = Field(default=None, max_length=10_000)
    # Sending the same id twice is a no-op; clients set it to make retries safe.
    decision_id: str | None = Field(default=None, min_length=1, max_length=200)
    # For `pivot`: the phase (name or index) to go back to.
    target_phase: str | int | None = None
    # For `approve_budget_increase`: the new budget in USD (default: enough to go on).
    budget_usd: Decimal | None = Field(default=None, gt=0)
    # Which opening of the checkpoint this decides (status and approvals show it). A
    # checkpoint re-opens after iterate or pivot; naming the opening you looked at
    # makes a decision that crossed a re-opening a refusal instead of a surprise.
    # None: the opening that is open when the decision arrives (see README).
    opening: int | None = Field(default=None, ge=1)


class DecisionRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision_id: str
    checkpoint: str
    phase: str
    decision: Decision
    approver: str
    comment: str | None = None
    target_phase: str | None = None
    budget_usd: Decimal | None = None
    received_at: datetime
    applied_at: datetime | None = None
    via: str = "update"
    opening: int | None = None


class ReceiptStatus(StrEnum):
    APPLIED = "applied"
    # A signal sent before the checkpoint's first opening; it lands when it opens.
    HELD = "held"
    # This decision_id was already taken; nothing changed.
    DUPLICATE = "duplicate"
    # No worker has taken the decision yet (none running, or all busy); it is queued
    # at Temporal and is validated when one does. Resend with the same decision_id
    # to learn the outcome: it is never applied twice.
    PENDING = "pending"


class DecisionReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision_id: str
    checkpoint: str
    decision: Decision
    status: ReceiptStatus = Field(description="applied | held | duplicate | pending")
    opening: int | None = Field(default=None, description="The opening of the checkpoint decided.")


class DecisionOutcome(BaseModel):
    """The `decision_outcome` query: what became of one sending of a decision (no field
    set: the run has not taken it yet)."""

    model_config = ConfigDict(frozen=True)

    receipt: DecisionReceipt | None = None
    # Why the run refused it (also a refused input in `status` and the Ledger).
    refused: str | None = None


class RefusedInput(BaseModel):
    """An input the run would not take, kept so a person can see why."""

    model_config = ConfigDict(frozen=True)

    received_at: datetime
    via: str
    reason: str
    payload: JsonValue = None
    # The client's name for the sending it refused (boomerang/decision_delivery.py).
    delivery: str | None = None


class CheckpointStatus(StrEnum):
    UPCOMING = "upcoming"
    OPEN = "open"
    DECIDED = "decided"
    EXPIRED = "expired"
    # The run was cancelled while it waited; it takes no more decisions.
    CANCELLED = "cancelled"


class OptionEffect(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: Decision
    effect: str = Field(description="What choosing it does, in this run, now.")


class CheckpointContext(BaseModel):
    """What the person deciding a checkpoint needs on one screen.

    `CheckpointView.context` carries it as JSON, so a run started before a field was
    added still shows. Money fields are for approvers (status, approvals, the API);
    webhooks get `customer_safe()`, which has none.
    """

    model_config = ConfigDict(frozen=True)

    summary: str = Field(description="What the phase this checkpoint gates produced.")
    recommendation: Decision | None = None
    why: str = ""
    options: tuple[OptionEffect, ...] = ()
    # The budget checkpoint: what comes next, spend so far, its estimate, the budget (USD).
    next: str | None = None
    spent_usd: str | None = None
    estimate_usd: str | None = None
    budget_usd: str | None = None

    def as_json(self) -> dict[str, JsonValue]:
        return self.model_dump(mode="json", exclude_none=True)

    def customer_safe(self) -> dict[str, JsonValue]:
        return self.model_dump(
            mode="json", exclude_none=True, exclude={"spent_usd", "estimate_usd", "budget_usd"}
        )


class CheckpointView(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    phase: str
    status: CheckpointStatus
    options: tuple[Decision, ...]
    approvers: tuple[str, ...]
    # The people who may decide it (its roles' people in the run's roster); empty: anyone.
    deciders: tuple[str, ...] = ()
    # 1 the first time the checkpoint opens, 2 after an iterate or pivot re-opens it, ...
    opening: int = 0
    recommendation: Decision | None = None
    opened_at: datetime | None = None
    deadline: datetime | None = None
    reminded_at: datetime | None = None
    # What the person deciding needs to see: `CheckpointContext` as JSON (summary of
    # the phase output, recommendation and why, what each option does, budget).
    context: dict[str, JsonValue] = Field(default_factory=dict)


class RunStatus(StrEnum):
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PipelineStatus(BaseModel):
    """The `status` query: where a run is and what it waits for."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    tenant: str
    project_id: str
    status: RunStatus
    phase: str | None
    phase_index: int | None
    pending: tuple[CheckpointView, ...]
    decisions: tuple[DecisionRecord, ...]
    refused: tuple[RefusedInput, ...]
    iterations: dict[str, int]
    pivots: int
    outputs: dict[str, JsonValue]
    # Who cancelled the run and why, once it was cancelled (`by` None: a Temporal cancel).
    cancellation: CancelRecord | None = None


class PipelineResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: RunStatus
    outputs: dict[str, JsonValue]
    decisions: tuple[DecisionRecord, ...]
    reason: str = ""
    cancellation: CancelRecord | None = None
