"""Registry of compute functions: name -> body and its limits.

`invoke` is the one entry point both backends use: the local backend calls it in a
worker process, and each Modal function in `app.py` calls it inside its container,
so the same body runs in both places.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue

from modal_app import phases
from modal_app.contracts import FunctionResult, PhaseRequest

MINUTES = 60


@dataclass(frozen=True)
class ComputeFunction:
    name: str
    body: Callable[[PhaseRequest], dict[str, JsonValue]]
    timeout_s: float
    gpu: str | None = None


PHASE_FUNCTIONS: dict[str, ComputeFunction] = {
    f.name: f
    for f in (
        ComputeFunction("phase_0_onboarding", phases.onboarding, 60 * MINUTES),
        ComputeFunction("phase_1_vpc_discovery", phases.vpc_discovery, 60 * MINUTES),
        ComputeFunction("phase_2_desirability", phases.desirability, 60 * MINUTES),
        ComputeFunction("phase_3_feasibility", phases.feasibility, 60 * MINUTES),
        ComputeFunction("phase_4_viability", phases.viability, 60 * MINUTES),
    )
}


class UnknownFunctionError(LookupError):
    """The named compute function is not registered."""


def lookup(name: str) -> ComputeFunction:
    try:
        return PHASE_FUNCTIONS[name]
    except KeyError:
        known = ", ".join(sorted(PHASE_FUNCTIONS))
        raise UnknownFunctionError(f"no compute function {name!r}; known: {known}") from None


def invoke(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run one function on a JSON payload and return a JSON `FunctionResult`."""
    fn = lookup(name)
    request = PhaseRequest.model_validate(payload)
    started = datetime.now(UTC)
    # Lets a caller stand in for a long phase (demos, crash drills) without a model.
    work = float(request.context.get("work_seconds", 0) or 0)  # type: ignore[arg-type]
    if work > 0:
        time.sleep(work)
    output = fn.body(request)
    result = FunctionResult(
        output=output,
        summary=f"{name} finished",
        started_at=started,
        finished_at=datetime.now(UTC),
        gpu_type=fn.gpu,
    )
    return result.model_dump(mode="json")
