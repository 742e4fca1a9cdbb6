"""Compute functions: a body, its request model and the resources it runs with.

`invoke` runs one: the local backend calls it (through `Registry.call`) in a compute
process, and each Modal function in `app.py` calls it inside its container, so the
same body runs in both places. The resources recorded here (GPU, CPU, memory,
timeout) are the ones `app.py` deploys with, so the costing of a result uses what
Modal actually bills for. `modal_app.registry` holds them by name.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, JsonValue, ValidationError

from modal_app import phases
from modal_app.contracts import (
    FunctionOutput,
    FunctionResult,
    PermanentError,
    PhaseRequest,
)
from modal_app.errors import BoomerangError
from modal_app.telemetry import TRACE_KEY, compute_span

MINUTES = 60

RequestT = TypeVar("RequestT", bound=BaseModel)
Body = Callable[[RequestT], FunctionOutput | dict[str, JsonValue] | dict[str, Any]]


@dataclass(frozen=True)
class ComputeFunction(Generic[RequestT]):
    """A body and the resources it runs with (on Modal, and for costing)."""

    name: str
    body: Body[RequestT]
    timeout_s: float
    gpu: str | None = None
    request_model: type[RequestT] = PhaseRequest  # type: ignore[assignment]
    cpu: float = 1.0
    memory_mib: int = 1024

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"function name {self.name!r} must be a Python identifier (Modal needs one)")
        if self.timeout_s <= 0 or self.cpu <= 0 or self.memory_mib <= 0:
            raise ValueError(f"{self.name}: timeout_s, cpu and memory_mib must be positive")


def _phase(name: str, body: Body[PhaseRequest]) -> ComputeFunction[PhaseRequest]:
    # Phases orchestrate LLM calls: CPU-bound when not waiting on the network, 4 GiB.
    return ComputeFunction(name, body, 60 * MINUTES, cpu=2.0, memory_mib=4096)


PHASE_FUNCTIONS: dict[str, ComputeFunction[Any]] = {
    f.name: f
    for f in (
        _phase("phase_0_onboarding", phases.onboarding),
        _phase("phase_1_vpc_discovery", phases.vpc_discovery),
        _phase("phase_2_desirability", phases.desirability),
        _phase("phase_3_feasibility", phases.feasibility),
        _phase("phase_4_viability", phases.viability),
    )
}


class UnknownFunctionError(BoomerangError, LookupError):
    """The named compute function is not registered."""


# Calls made in this process (a Modal container or a local compute process): the
# first one paid for the start-up, which the cold-start metric counts.
_CALLS = itertools.count()


def _runtime() -> Literal["local", "modal"]:
    # Modal sets MODAL_IS_REMOTE=1 in every Function container; importing modal to ask
    # would cost the local worker a second per process start.
    return "modal" if os.environ.get("MODAL_IS_REMOTE") == "1" else "local"


def invoke(fn: ComputeFunction[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Run `fn` on a JSON payload and return a JSON `FunctionResult`.

    Raises what the body raises: `ValueError` (pydantic's `ValidationError` is one)
    and `PermanentError` for bad input, anything else for failures a retry may fix.
    The caller's trace context (`telemetry.TRACE_KEY`) is not part of the request.
    """
    with compute_span(fn.name, payload.get(TRACE_KEY)):
        return _invoke(fn, {k: v for k, v in payload.items() if k != TRACE_KEY})


def _invoke(fn: ComputeFunction[Any], payload: dict[str, Any]) -> dict[str, Any]:
    name = fn.name
    request = fn.request_model.model_validate(payload)
    started = datetime.now(UTC)
    # Lets a caller stand in for a long call (demos, crash drills) without a model.
    context = getattr(request, "context", None) or {}
    work = float(context.get("work_seconds", 0) or 0)
    if work > 0:
        time.sleep(work)
    raw = fn.body(request)
    out = raw if isinstance(raw, FunctionOutput) else FunctionOutput(output=raw)
    result = FunctionResult(
        output=out.output,
        summary=out.summary or f"{name} finished",
        started_at=started,
        finished_at=datetime.now(UTC),
        gpu_type=fn.gpu,
        usage=out.usage,
        function=name,
        cpu=fn.cpu,
        memory_mib=fn.memory_mib,
        device=out.device,
        runtime=_runtime(),
        warnings=out.warnings,
        cold_start=next(_CALLS) == 0,
    )
    return result.model_dump(mode="json")


# Errors that no retry can fix: the input, the function name or the credentials are wrong.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    ValidationError,
    ValueError,
    TypeError,
    KeyError,
    UnknownFunctionError,
    PermanentError,
)


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, PERMANENT_ERRORS)
