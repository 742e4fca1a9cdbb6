"""The Boomer_Ang specialists: who handles which task type, on what GPU, with which models.

A user module adds one to the registry (see `modal_app.registry`):

    def register(registry: Registry) -> None:
        registry.add_specialist(
            Specialist(id="Lint_Ang", task_types=("lint",), gpu=None, models=(), tools=("ruff",),
                       function="task_lint_ang", payload_model=LintPayload),  # optional
            body=lint,                   # Callable[[TaskRequest], FunctionOutput]
        )

A workflow needs only the task type: `registry.specialist_for` names the compute
function to dispatch, so adding a specialist touches neither the workflows nor the
activities, and the Modal app deploys a function for it from the same registry.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pydantic import BaseModel

from modal_app import tasks
from modal_app.contracts import PermanentError, TaskRequest
from modal_app.functions import MINUTES, Body

# The seed's worker shape: one A10G, 4 cores, 16 GiB, an hour at most.
SEED_GPU = "A10G"
SEED_CPU = 4.0
SEED_MEMORY_MIB = 16 * 1024
SEED_TIMEOUT_S = 60 * MINUTES


class UnknownSpecialistError(LookupError, PermanentError):
    """No specialist has that id, or none handles that task type. Permanent."""


@dataclass(frozen=True)
class Specialist:
    id: str
    task_types: tuple[str, ...]
    gpu: str | None
    models: tuple[str, ...]
    tools: tuple[str, ...]
    function: str  # the compute function that runs its tasks
    # What a task's payload must fit. Front doors check it before anything starts (a sweep
    # of this task type names every item that does not fit); the body parses it again.
    payload_model: type[BaseModel] | None = None

    def __post_init__(self) -> None:
        if not self.id or not self.task_types:
            raise ValueError("a specialist needs an id and at least one task type")


# Per the seed: models and tools of each worker; GPU A10G for all four.
CODE_ANG = Specialist(
    id="Code_Ang",
    task_types=("code_generation",),
    gpu=SEED_GPU,
    models=("gpt-4.1-nano", "claude-3.5-haiku", "deepseek-v3.2"),
    tools=("git", "docker", "fastapi", "next.js"),
    function="task_code_ang",
    payload_model=tasks.CodePayload,
)
SCOUT_ANG = Specialist(
    id="Scout_Ang",
    task_types=("research",),
    gpu=SEED_GPU,
    models=("gpt-4.1-nano", "ii-researcher"),
    tools=("tavily", "serpapi", "deerflow"),
    function="task_scout_ang",
    payload_model=tasks.ResearchPayload,
)
PAINT_ANG = Specialist(
    id="Paint_Ang",
    task_types=("design",),
    gpu=SEED_GPU,
    models=("flux-schnell", "stable-diffusion-xl"),
    tools=("superdesign-api", "figma-api"),
    function="task_paint_ang",
    payload_model=tasks.DesignPayload,
)
CRUNCH_ANG = Specialist(
    id="Crunch_Ang",
    task_types=("data_analysis",),
    gpu=SEED_GPU,
    models=(),
    tools=("numpy", "cupy", "torch"),
    function="task_crunch_ang",
    payload_model=tasks.AnalysisPayload,
)


def builtin_specialists() -> tuple[tuple[Specialist, Body[TaskRequest]], ...]:
    """The four built-in specialists with their bodies (the registry adds them)."""
    return (
        (CODE_ANG, functools.partial(tasks.code_generation, models=CODE_ANG.models)),
        # Scout_Ang's ii-researcher is an agent, not a chat model: the chat model it calls is gpt-4.1-nano.
        (SCOUT_ANG, functools.partial(tasks.research, models=("gpt-4.1-nano",))),
        (PAINT_ANG, functools.partial(tasks.design, models=PAINT_ANG.models)),
        (CRUNCH_ANG, tasks.data_analysis),
    )
