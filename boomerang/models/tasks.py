"""Specialist (Boomer_Ang) tasks and compute dispatch, as they cross workflow/activity lines."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, JsonValue

from boomerang.models.cancel import CancelRecord
from boomerang.models.events import CostBreakdown, RunEvent
from boomerang.money import Usd
from modal_app.contracts import FunctionResult

# A pipeline phase's specialist task: `<run id>/task-<nnn>-<task type>` (once a child
# workflow's id; now the task runs inside the run, which takes its compute callbacks).
_PHASE_TASK_ID = re.compile(r"(?P<run_id>.+)/task-\d{3}-[A-Za-z0-9_.-]+")


def phase_task_id(run_id: str, number: int, task_type: str) -> str:
    return f"{run_id}/task-{number:03d}-{task_type}"


def run_of_phase_task(task_id: str) -> str | None:
    """The run a phase task id belongs to, or None for another kind of id."""
    match = _PHASE_TASK_ID.fullmatch(task_id)
    return match["run_id"] if match else None


class TaskInput(BaseModel):
    """Input of the `BoomerAngTask` workflow; new fields must have defaults."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant: str = Field(min_length=1, max_length=200)
    task_type: str = Field(min_length=1, max_length=100)
    payload: dict[str, JsonValue] = Field(default_factory=dict)
    # None: the specialist registered for `task_type`; if given, it must handle it.
    boomer_ang_id: str | None = Field(default=None, min_length=1, max_length=100)
    # The run this task belongs to (a pipeline); None: the task is its own run.
    run_id: str | None = None
    project_id: str | None = None
    phase: str | None = None
    # Refuse to dispatch when the estimate alone would cross this (USD).
    max_cost_usd: Decimal | None = Field(default=None, gt=0)
    expected_seconds: float = Field(default=60, gt=0, description="For the cost estimate.")
    max_attempts: int = Field(default=3, ge=1, le=20)
    heartbeat_timeout: timedelta = Field(default=timedelta(seconds=30), ge=timedelta(seconds=1))
    # Signed notifications of the task's end (completed, failed, over budget) go here.
    webhook_url: HttpUrl | None = None


class Attribution(BaseModel):
    """Who a compute call is for: where its cost lands in the Ledger."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    tenant: str
    project_id: str | None = None
    phase: str | None = None
    boomer_ang_id: str | None = None
    task_type: str | None = None


class DispatchInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    function: str
    payload: dict[str, JsonValue]
    timeout_s: float = Field(gt=0)
    # A few beats per heartbeat timeout, so one late beat never fails a live attempt.
    heartbeat_every_s: float = Field(default=2.0, gt=0)
    attribution: Attribution
    # The run's events queued when it dispatched (e.g. phase_started): written before the
    # call, in order, once each (workflows/recording.py `EventLog.hand_off` says why).
    events: tuple[RunEvent, ...] = ()


class DispatchOutcome(BaseModel):
    """One successful attempt: the function's result and what that attempt cost."""

    model_config = ConfigDict(frozen=True)

    result: FunctionResult
    cost: CostBreakdown
    attempt: int = 1


class TaskPlan(BaseModel):
    """What a task will run on, and what it is expected to cost."""

    model_config = ConfigDict(frozen=True)

    boomer_ang_id: str
    task_type: str
    function: str
    gpu_type: str | None
    timeout_s: float
    estimate: CostBreakdown


class PlanTaskInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    task_type: str
    boomer_ang_id: str | None = None
    expected_seconds: float = Field(default=60, gt=0)


class TaskOutcome(BaseModel):
    """Result of the `BoomerAngTask` workflow."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    run_id: str
    boomer_ang_id: str
    task_type: str
    status: Literal["completed", "failed", "cancelled"]
    output: dict[str, JsonValue] = Field(default_factory=dict)
    summary: str = ""
    execution_time_s: float | None = None
    cost_usd: Usd = Decimal(0)
    error: str | None = None
    # Who cancelled the task and why, when it was cancelled.
    cancellation: CancelRecord | None = None
