"""HTTP bodies: what callers send and get back, beside the models the runs already use."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, JsonValue, field_validator

from boomerang.models.pipeline import OPERATOR_CONTEXT_KEYS, TENANT_HEARTBEAT_FLOOR, Decision, PipelineSpec
from boomerang.spec_files import unknown_fields

RUN_ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,1000}$"


class KickoffRequest(BaseModel):
    """A `PipelineInput` without `tenant`: the tenant is the token's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project_id: str = Field(min_length=1, max_length=200)
    brief: str = Field(min_length=1, max_length=50_000)
    spec: PipelineSpec | None = Field(default=None, description="None: the default pipeline.")

    context: dict[str, JsonValue] = Field(default_factory=dict)
    roster: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    webhook_url: HttpUrl | None = Field(default=None, description="Signed notifications of this run go here.")
    budget_usd: Decimal | None = Field(default=None, gt=0, description="USD the run may spend before asking.")

    @field_validator("spec", mode="before")
    @classmethod
    def _spec_fields_known(cls, value: object) -> object:
        # Runs ignore unknown spec fields (rolling deploys); a request is held to them.
        unknown = unknown_fields(PipelineSpec, value)
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(unknown)}")
        return value

    @field_validator("spec")
    @classmethod
    def _heartbeats_at_the_floor(cls, spec: PipelineSpec | None) -> PipelineSpec | None:
        # A tenant's spec may not make workers heartbeat more often than operators allow.
        for phase in spec.phases if spec else ():
            if phase.heartbeat_timeout < TENANT_HEARTBEAT_FLOOR:
                raise ValueError(
                    f"phase {phase.name}: heartbeat_timeout must be at least "
                    f"{TENANT_HEARTBEAT_FLOOR.total_seconds():g}s"
                )
        return spec

    @field_validator("context")
    @classmethod
    def _no_operator_hooks(cls, context: dict[str, JsonValue]) -> dict[str, JsonValue]:
        reserved = sorted(OPERATOR_CONTEXT_KEYS & set(context))
        if reserved:
            raise ValueError(f"{', '.join(reserved)}: reserved for operators (not settable through the API)")
        return context


class KickoffResponse(BaseModel):
    run_id: str
    status_url: str


class ApproveRequest(BaseModel):
    """A `DecisionInput` plus the run, without `approver`: the approver is the token's identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    checkpoint: str = Field(min_length=1, max_length=64)
    decision: Decision = Decision.APPROVE
    comment: str | None = Field(default=None, max_length=10_000)
    decision_id: str | None = Field(default=None, min_length=1, max_length=200)
    target_phase: str | int | None = None
    budget_usd: Decimal | None = Field(default=None, gt=0, description="approve_budget_increase: new budget")
    opening: int | None = Field(
        default=None,
        ge=1,
        description="The opening of the checkpoint you looked at (approvals shows it); refused once it "
        "has closed. None: the opening that is open when the decision arrives.",
    )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    temporal: bool
    database: bool


class CallbackAck(BaseModel):
    status: Literal["accepted", "duplicate", "too_late"] = Field(
        description="accepted: handed to the task; duplicate: this webhook-id was already taken; "
        "too_late: the task had already finished"
    )
    task_id: str


class ErrorBody(BaseModel):
    detail: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error codes, so clients (and schemathesis) know them."""
    return {code: {"model": ErrorBody} for code in codes}
