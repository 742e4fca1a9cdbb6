"""Decisions on checkpoints, and what a run reports about them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue

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


class DecisionReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision_id: str
    checkpoint: str
    decision: Decision
    status: str = Field(description="applied | held (checkpoint not open yet) | duplicate")


class RefusedInput(BaseModel):
    """An input the run would not take, kept so a person can see why."""

    model_config = ConfigDict(frozen=True)

    received_at: datetime
    via: str
    reason: str
    payload: JsonValue = None


class CheckpointStatus(StrEnum):
    UPCOMING = "upcoming"
    OPEN = "open"
    DECIDED = "decided"
    EXPIRED = "expired"


class CheckpointView(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    phase: str
    status: CheckpointStatus
    options: tuple[Decision, ...]
    approvers: tuple[str, ...]
    recommendation: Decision | None = None
    opened_at: datetime | None = None
    deadline: datetime | None = None
    reminded_at: datetime | None = None
    # What the person deciding needs to see (e.g. spend so far and the next estimate).
    context: dict[str, JsonValue] = Field(default_factory=dict)


class RunStatus(StrEnum):
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"


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


class PipelineResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: RunStatus
    outputs: dict[str, JsonValue]
    decisions: tuple[DecisionRecord, ...]
    reason: str = ""
