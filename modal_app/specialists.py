"""The Boomer_Ang specialists: who handles which task type, on what GPU, with which models.

    register_specialist(
        Specialist(id="Lint_Ang", task_types=("lint",), gpu=None, models=(), tools=("ruff",),
                   function="task_lint_ang"),
        body=my_lint_body,               # Callable[[TaskRequest], FunctionOutput]
    )
    specialist_for("lint").function      # -> "task_lint_ang", runnable via functions.invoke

A workflow needs only the task type: `specialist_for` names the compute function to
dispatch, so adding a specialist touches neither the workflows nor the activities.
(To run a new one on Modal, also give it a function in a Modal app, as `app.py` does.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from modal_app import tasks
from modal_app.contracts import TaskRequest
from modal_app.functions import MINUTES, Body, ComputeFunction, lookup, register, unregister

# The seed's worker shape: one A10G, 4 cores, 16 GiB, an hour at most.
SEED_GPU = "A10G"
SEED_CPU = 4.0
SEED_MEMORY_MIB = 16 * 1024
SEED_TIMEOUT_S = 60 * MINUTES


class UnknownSpecialistError(LookupError):
    """No specialist has that id, or none handles that task type. Permanent."""


@dataclass(frozen=True)
class Specialist:
    id: str
    task_types: tuple[str, ...]
    gpu: str | None
    models: tuple[str, ...]
    tools: tuple[str, ...]
    function: str  # the compute function that runs its tasks

    def __post_init__(self) -> None:
        if not self.id or not self.task_types:
            raise ValueError("a specialist needs an id and at least one task type")


_BY_ID: dict[str, Specialist] = {}
_BY_TASK_TYPE: dict[str, Specialist] = {}


def register_specialist(
    specialist: Specialist,
    *,
    body: Body[TaskRequest] | None = None,
    timeout_s: float = SEED_TIMEOUT_S,
    cpu: float = SEED_CPU,
    memory_mib: int = SEED_MEMORY_MIB,
    replace: bool = False,
) -> Specialist:
    """Add a specialist; with `body`, also register its compute function (with its GPU).

    Without `body`, `specialist.function` must already be a registered function. A
    task type or id already taken is an error unless `replace`.
    """
    taken = [t for t in specialist.task_types if t in _BY_TASK_TYPE and _BY_TASK_TYPE[t].id != specialist.id]
    if not replace and (specialist.id in _BY_ID or taken):
        what = f"id {specialist.id!r}" if specialist.id in _BY_ID else f"task types {taken}"
        raise ValueError(f"specialist {what} already registered (pass replace=True to override)")
    if body is not None:
        fn = ComputeFunction(
            specialist.function,
            body,
            timeout_s,
            gpu=specialist.gpu,
            request_model=TaskRequest,
            cpu=cpu,
            memory_mib=memory_mib,
        )
        register(fn, replace=replace)
    else:
        lookup(specialist.function)  # fails now, naming what is known, not at the first task
    old = _BY_ID.get(specialist.id)
    if old is not None:
        for t in old.task_types:
            _BY_TASK_TYPE.pop(t, None)
    _BY_ID[specialist.id] = specialist
    for t in specialist.task_types:
        _BY_TASK_TYPE[t] = specialist
    return specialist


def unregister_specialist(specialist_id: str, *, drop_function: bool = True) -> None:
    """Remove a specialist (and, by default, its compute function); unknown ids are ignored."""
    old = _BY_ID.pop(specialist_id, None)
    if old is None:
        return
    for t in old.task_types:
        if _BY_TASK_TYPE.get(t) is old:
            del _BY_TASK_TYPE[t]
    if drop_function:
        unregister(old.function)


def get_specialist(specialist_id: str) -> Specialist:
    try:
        return _BY_ID[specialist_id]
    except KeyError:
        known = ", ".join(sorted(_BY_ID))
        raise UnknownSpecialistError(f"no specialist {specialist_id!r}; known: {known}") from None


def specialist_for(task_type: str) -> Specialist:
    try:
        return _BY_TASK_TYPE[task_type]
    except KeyError:
        known = ", ".join(f"{t} ({s.id})" for t, s in sorted(_BY_TASK_TYPE.items()))
        raise UnknownSpecialistError(
            f"no specialist handles task type {task_type!r}; known: {known}"
        ) from None


def all_specialists() -> tuple[Specialist, ...]:
    return tuple(_BY_ID.values())


def _builtin(specialist: Specialist, body: Body[TaskRequest], **options: Any) -> None:
    register_specialist(specialist, body=body, replace=True, **options)


# Per the seed: models and tools of each worker; GPU A10G for all four.
CODE_ANG = Specialist(
    id="Code_Ang",
    task_types=("code_generation",),
    gpu=SEED_GPU,
    models=("gpt-4.1-nano", "claude-3.5-haiku", "deepseek-v3.2"),
    tools=("git", "docker", "fastapi", "next.js"),
    function="task_code_ang",
)
SCOUT_ANG = Specialist(
    id="Scout_Ang",
    task_types=("research",),
    gpu=SEED_GPU,
    models=("gpt-4.1-nano", "ii-researcher"),
    tools=("tavily", "serpapi", "deerflow"),
    function="task_scout_ang",
)
PAINT_ANG = Specialist(
    id="Paint_Ang",
    task_types=("design",),
    gpu=SEED_GPU,
    models=("flux-schnell", "stable-diffusion-xl"),
    tools=("superdesign-api", "figma-api"),
    function="task_paint_ang",
)
CRUNCH_ANG = Specialist(
    id="Crunch_Ang",
    task_types=("data_analysis",),
    gpu=SEED_GPU,
    models=(),
    tools=("numpy", "cupy", "torch"),
    function="task_crunch_ang",
)

_builtin(CODE_ANG, functools.partial(tasks.code_generation, models=CODE_ANG.models))
# Scout_Ang's ii-researcher is an agent, not a chat model: the chat model it calls is gpt-4.1-nano.
_builtin(SCOUT_ANG, functools.partial(tasks.research, models=("gpt-4.1-nano",)))
_builtin(PAINT_ANG, functools.partial(tasks.design, models=PAINT_ANG.models))
_builtin(CRUNCH_ANG, tasks.data_analysis)
