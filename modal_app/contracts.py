"""Typed input and output of every compute function (JSON over the wire).

A body receives its validated request (`PhaseRequest` for pipeline phases,
`TaskRequest` for specialist tasks) and returns a `FunctionOutput` (or, for the
phases, a plain dict). `functions.invoke` wraps that in a `FunctionResult`, which
adds what the caller needs to cost the call: its own start/end, the resources it was
configured with (GPU, CPU, memory) and the token usage per model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

# Bodies and callers have always imported it from here.
from modal_app.errors import PermanentError as PermanentError


class TokenUsage(BaseModel):
    """Tokens one model call used; `model` is the price-table name of the model."""

    model_config = ConfigDict(frozen=True)

    model: str
    provider: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)


class PhaseRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    phase: str
    brief: str
    iteration: int = Field(default=0, ge=0)
    feedback: tuple[str, ...] = ()
    hypothesis: str | None = None
    previous: dict[str, JsonValue] = Field(default_factory=dict)
    context: dict[str, JsonValue] = Field(default_factory=dict)


class TaskRequest(BaseModel):
    """One specialist task. `payload` is validated again by the specialist's body."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str = Field(min_length=1)
    task_id: str = Field(min_length=1)
    boomer_ang_id: str = Field(min_length=1)
    task_type: str = Field(min_length=1)
    payload: dict[str, JsonValue] = Field(default_factory=dict)


class FunctionOutput(BaseModel):
    """What a body returns: its output plus what only the body knows about its run."""

    model_config = ConfigDict(frozen=True)

    output: dict[str, JsonValue]
    summary: str = ""
    usage: tuple[TokenUsage, ...] = ()
    # Where the work actually ran (e.g. "cuda:NVIDIA A10G" or "cpu"), when it matters.
    device: str | None = None
    # Degradations the caller should know about but that did not fail the call
    # (offline LLM provider used, a column skipped); Ledger material, not Charter.
    warnings: tuple[str, ...] = ()


class FunctionResult(BaseModel):
    """What every compute function returns: its output and how it ran."""

    model_config = ConfigDict(frozen=True)

    output: dict[str, JsonValue]
    summary: str = ""
    started_at: datetime
    finished_at: datetime
    gpu_type: str | None = None
    usage: tuple[TokenUsage, ...] = ()
    function: str = ""
    # The resources the function was configured with: what Modal bills for.
    cpu: float | None = None
    memory_mib: int | None = None
    device: str | None = None
    # "modal" inside a Modal container, "local" anywhere else (nothing billed by Modal).
    runtime: Literal["local", "modal"] = "local"
    warnings: tuple[str, ...] = ()
    # The first call in its process or container: it paid for the start-up.
    cold_start: bool = False

    @property
    def execution_time_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class FunctionError(BaseModel):
    """A failed call, as data: what both backends send back instead of raising."""

    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    permanent: bool
    traceback: str = ""
