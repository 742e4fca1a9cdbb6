"""The specialist and function registries: built-ins, registration, clear errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modal_app.contracts import FunctionOutput, TaskRequest, TokenUsage
from modal_app.functions import PHASE_FUNCTIONS, UnknownFunctionError, invoke, lookup, registered
from modal_app.specialists import (
    Specialist,
    UnknownSpecialistError,
    all_specialists,
    get_specialist,
    register_specialist,
    specialist_for,
    unregister_specialist,
)
from tests.compute import task

LINT_ANG = Specialist(
    id="Lint_Ang",
    task_types=("lint",),
    gpu="T4",
    models=("deepseek-v3.2",),
    tools=("ruff",),
    function="task_lint_ang",
)


def lint(req: TaskRequest) -> FunctionOutput:
    source = str(req.payload.get("source", ""))
    long_lines = [i + 1 for i, line in enumerate(source.splitlines()) if len(line) > 20]
    usage = TokenUsage(model="deepseek-v3.2", provider="test", input_tokens=3, output_tokens=1)
    return FunctionOutput(output={"long_lines": long_lines}, usage=(usage,))


@pytest.fixture
def lint_ang() -> Iterator[Specialist]:
    yield register_specialist(LINT_ANG, body=lint, cpu=1, memory_mib=512, timeout_s=60)
    unregister_specialist("Lint_Ang")


def test_the_seed_specialists() -> None:
    table = {s.id: (s.task_types, s.gpu, s.function) for s in all_specialists()}
    assert table == {
        "Code_Ang": (("code_generation",), "A10G", "task_code_ang"),
        "Scout_Ang": (("research",), "A10G", "task_scout_ang"),
        "Paint_Ang": (("design",), "A10G", "task_paint_ang"),
        "Crunch_Ang": (("data_analysis",), "A10G", "task_crunch_ang"),
    }
    assert get_specialist("Code_Ang").models == ("gpt-4.1-nano", "claude-3.5-haiku", "deepseek-v3.2")
    assert get_specialist("Paint_Ang").models == ("flux-schnell", "stable-diffusion-xl")
    assert get_specialist("Scout_Ang").tools == ("tavily", "serpapi", "deerflow")
    for s in all_specialists():
        fn = lookup(s.function)
        assert (fn.gpu, fn.cpu, fn.memory_mib, fn.timeout_s) == ("A10G", 4.0, 16384, 3600)
    assert set(PHASE_FUNCTIONS) < set(registered())


def test_register_a_specialist_and_invoke_it(lint_ang: Specialist) -> None:
    assert specialist_for("lint") is lint_ang
    raw = invoke(lint_ang.function, task("lint", "Lint_Ang", {"source": "ok\nthis line is far too long\n"}))
    assert raw["output"] == {"long_lines": [2]}
    assert (raw["gpu_type"], raw["cpu"], raw["memory_mib"]) == ("T4", 1.0, 512)
    assert raw["usage"][0]["model"] == "deepseek-v3.2"


def test_unregistering_forgets_the_specialist_and_its_function() -> None:
    register_specialist(LINT_ANG, body=lint)
    unregister_specialist("Lint_Ang")
    with pytest.raises(UnknownSpecialistError):
        specialist_for("lint")
    with pytest.raises(UnknownFunctionError):
        lookup("task_lint_ang")


def test_unknown_task_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownSpecialistError) as caught:
        specialist_for("poetry")
    assert str(caught.value) == (
        "no specialist handles task type 'poetry'; known: code_generation (Code_Ang), "
        "data_analysis (Crunch_Ang), design (Paint_Ang), research (Scout_Ang)"
    )
    with pytest.raises(
        UnknownSpecialistError, match=r"no specialist 'Nope_Ang'; known: Code_Ang, Crunch_Ang"
    ):
        get_specialist("Nope_Ang")


def test_conflicts_are_refused(lint_ang: Specialist) -> None:
    thief = Specialist(
        id="Other_Ang", task_types=("lint",), gpu=None, models=(), tools=(), function="task_lint_ang"
    )
    with pytest.raises(ValueError, match=r"task types \['lint'\] already registered"):
        register_specialist(thief)
    with pytest.raises(ValueError, match="id 'Lint_Ang' already registered"):
        register_specialist(LINT_ANG, body=lint)


def test_a_specialist_without_a_body_needs_an_existing_function() -> None:
    ghost = Specialist(
        id="Ghost_Ang", task_types=("haunt",), gpu=None, models=(), tools=(), function="task_ghost"
    )
    with pytest.raises(
        UnknownFunctionError, match=r"no compute function 'task_ghost'; known: .*task_code_ang"
    ):
        register_specialist(ghost)
    with pytest.raises(UnknownSpecialistError):
        specialist_for("haunt")
    # Reusing a registered function under a second specialist is fine.
    alias = Specialist(
        id="Quant_Ang", task_types=("stats",), gpu="A10G", models=(), tools=(), function="task_crunch_ang"
    )
    try:
        assert specialist_for(register_specialist(alias).task_types[0]).function == "task_crunch_ang"
    finally:
        unregister_specialist("Quant_Ang", drop_function=False)
    assert lookup("task_crunch_ang")


def test_bad_function_definitions_are_refused() -> None:
    bad = Specialist(id="Bad_Ang", task_types=("bad",), gpu=None, models=(), tools=(), function="task-bad")
    with pytest.raises(ValueError, match="must be a Python identifier"):
        register_specialist(bad, body=lint)
    with pytest.raises(ValueError, match="at least one task type"):
        Specialist(id="Empty_Ang", task_types=(), gpu=None, models=(), tools=(), function="f")
