"""Typed input and output of every compute function (JSON over the wire)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class TokenUsage(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    provider: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)


class PhaseRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    phase: str
    brief: str
    iteration: int = Field(default=0, ge=0)
    feedback: tuple[str, ...] = ()
    hypothesis: str | None = None
    previous: dict[str, JsonValue] = Field(default_factory=dict)
    context: dict[str, JsonValue] = Field(default_factory=dict)


class FunctionResult(BaseModel):
    """What every compute function returns: its output and how it ran."""

    model_config = ConfigDict(frozen=True)

    output: dict[str, JsonValue]
    summary: str = ""
    started_at: datetime
    finished_at: datetime
    gpu_type: str | None = None
    usage: tuple[TokenUsage, ...] = ()

    @property
    def execution_time_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()
