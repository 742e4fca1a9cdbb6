"""A pipeline is data: phases, each with a compute function and its checkpoints."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, JsonValue, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
# The shortest heartbeat timeout a tenant's spec may ask for (through the API): each
# phase heartbeats a third of it, and workers poll the compute backend as often.
TENANT_HEARTBEAT_FLOOR = timedelta(seconds=10)
# Context keys only operators may set (the CLI, the Python client): `work_seconds`
# makes compute sleep, billable, for demos and crash drills.
OPERATOR_CONTEXT_KEYS = frozenset({"work_seconds"})


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    ITERATE = "iterate"
    PIVOT = "pivot"
    OVERRIDE_PROCEED = "override_proceed"


class ExpiryPolicy(StrEnum):
    """What a checkpoint does when nobody decides before its deadline."""

    REJECT = "reject"  # the run ends with status `expired`
    PROCEED = "proceed"  # the run goes on as if approved, recorded as expired


class CheckpointSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(pattern=NAME_PATTERN)
    title: str
    options: tuple[Decision, ...] = (Decision.APPROVE, Decision.REJECT, Decision.ITERATE)
    # Empty means anyone may decide; otherwise the approver must name one of these
    # people or roles ("founder", "alice", ...).
    approvers: tuple[str, ...] = ()
    timeout: timedelta = timedelta(days=7)
    reminder_after: timedelta | None = timedelta(hours=24)
    # How long before the deadline approvers are warned that it is about to expire.
    expiry_warning: timedelta | None = timedelta(hours=1)
    on_expiry: ExpiryPolicy = ExpiryPolicy.REJECT
    recommendation: Decision | None = Decision.APPROVE

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.options:
            raise ValueError(f"checkpoint {self.name!r} offers no options")
        if self.timeout <= timedelta(0):
            raise ValueError(f"checkpoint {self.name!r}: timeout must be positive")
        if self.reminder_after is not None and not (timedelta(0) < self.reminder_after < self.timeout):
            raise ValueError(f"checkpoint {self.name!r}: reminder_after must be inside the timeout")
        if self.expiry_warning is not None and not (timedelta(0) < self.expiry_warning < self.timeout):
            raise ValueError(f"checkpoint {self.name!r}: expiry_warning must be inside the timeout")
        return self


class PhaseTask(BaseModel):
    """A specialist task a phase runs after its own function (inside the run, as a `BoomerAngTask`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    task_type: str = Field(min_length=1)
    payload: dict[str, JsonValue] = Field(default_factory=dict)
    # Fill this payload field with the brief (and the pivot hypothesis, if any).
    brief_field: str | None = None
    brief_chars: int = Field(default=2000, ge=1)
    expected_seconds: float = Field(default=60, gt=0)


class PhaseSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(pattern=NAME_PATTERN)
    title: str
    function: str = Field(description="Name of the compute function in modal_app.")
    timeout: timedelta = timedelta(hours=1)
    # How soon a dead worker is noticed and the phase retried on another one.
    heartbeat_timeout: timedelta = Field(default=timedelta(seconds=30), ge=timedelta(seconds=1))
    max_attempts: int = Field(default=3, ge=1, le=100)
    # For the cost estimate a budget is checked against before the phase runs.
    expected_seconds: float = Field(default=60, gt=0)
    tasks: tuple[PhaseTask, ...] = ()
    checkpoints: tuple[CheckpointSpec, ...] = ()
    max_iterations: int = Field(default=3, ge=0, le=20)


class PipelineSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(pattern=NAME_PATTERN)
    phases: tuple[PhaseSpec, ...] = Field(min_length=1)
    max_pivots: int = Field(default=2, ge=0, le=20)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        phases = [p.name for p in self.phases]
        checkpoints = [c.name for p in self.phases for c in p.checkpoints] + [BUDGET_CHECKPOINT]
        for kind, names in (("phase", phases), ("checkpoint", checkpoints)):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} names: {', '.join(dupes)}")
        return self

    def phase_index(self, name: str) -> int:
        for i, phase in enumerate(self.phases):
            if phase.name == name:
                return i
        raise KeyError(name)

    def find_checkpoint(self, name: str) -> tuple[int, CheckpointSpec] | None:
        for i, phase in enumerate(self.phases):
            for cp in phase.checkpoints:
                if cp.name == name:
                    return i, cp
        return None


BUDGET_CHECKPOINT = "approve_budget_increase"


def budget_checkpoint() -> CheckpointSpec:
    """The checkpoint a run with a budget stops at before work that would cross it."""
    return CheckpointSpec(
        name=BUDGET_CHECKPOINT,
        title="Approve a budget increase",
        options=(Decision.APPROVE, Decision.REJECT),
        approvers=("founder", "finance"),
        recommendation=None,
    )


class PipelineInput(BaseModel):
    """Input of the `ValidationPipeline` workflow; new fields must have defaults."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant: str = Field(min_length=1, max_length=200)
    project_id: str = Field(min_length=1, max_length=200)
    brief: str = Field(min_length=1, max_length=50_000)
    spec: PipelineSpec | None = Field(default=None, description="None: the default pipeline.")
    context: dict[str, JsonValue] = Field(default_factory=dict)
    # Who may decide: role -> people. A checkpoint names roles; a decision must come
    # from a person holding one of them. Empty: any named person may decide.
    roster: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Signed notifications (checkpoints, decisions, the end of the run) go here.
    webhook_url: HttpUrl | None = None
    # USD the run may spend; crossing it waits at `approve_budget_increase`.
    budget_usd: Decimal | None = Field(default=None, gt=0)
    # The approvals inbox's base URL (settings' inbox_base_url, set by the front door):
    # with it, checkpoints notify people (Slack, e-mail) with a link to their inbox item.
    inbox_url: str | None = Field(default=None, max_length=2000)
