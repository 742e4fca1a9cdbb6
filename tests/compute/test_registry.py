"""The specialist and function registries: built-ins, registration, clear errors."""

from __future__ import annotations

import pytest

from modal_app.contracts import FunctionOutput, TaskRequest, TokenUsage
from modal_app.functions import PHASE_FUNCTIONS, UnknownFunctionError
from modal_app.registry import Registry, builtin_registry
from modal_app.specialists import Specialist, UnknownSpecialistError
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
def registry() -> Registry:
    return builtin_registry()


@pytest.fixture
def lint_ang(registry: Registry) -> Specialist:
    return registry.add_specialist(LINT_ANG, body=lint, cpu=1, memory_mib=512, timeout_s=60)


def test_the_seed_specialists(registry: Registry) -> None:
    table = {s.id: (s.task_types, s.gpu, s.function) for s in registry.specialists()}
    assert table == {
        "Code_Ang": (("code_generation",), "A10G", "task_code_ang"),
        "Scout_Ang": (("research",), "A10G", "task_scout_ang"),
        "Paint_Ang": (("design",), "A10G", "task_paint_ang"),
        "Crunch_Ang": (("data_analysis",), "A10G", "task_crunch_ang"),
    }
    assert registry.get_specialist("Code_Ang").models == ("gpt-4.1-nano", "claude-3.5-haiku", "deepseek-v3.2")
    assert registry.get_specialist("Paint_Ang").models == ("flux-schnell", "stable-diffusion-xl")
    assert registry.get_specialist("Scout_Ang").tools == ("tavily", "serpapi", "deerflow")
    for s in registry.specialists():
        fn = registry.lookup(s.function)
        assert (fn.gpu, fn.cpu, fn.memory_mib, fn.timeout_s) == ("A10G", 4.0, 16384, 3600)
    assert set(PHASE_FUNCTIONS) < set(registry.functions())


def test_register_a_specialist_and_invoke_it(registry: Registry, lint_ang: Specialist) -> None:
    assert registry.specialist_for("lint") is lint_ang
    raw = registry.invoke(
        lint_ang.function, task("lint", "Lint_Ang", {"source": "ok\nthis line is far too long\n"})
    )
    assert raw["output"] == {"long_lines": [2]}
    assert (raw["gpu_type"], raw["cpu"], raw["memory_mib"]) == ("T4", 1.0, 512)
    assert raw["usage"][0]["model"] == "deepseek-v3.2"


def test_registries_are_separate_and_nothing_registers_on_import(lint_ang: Specialist) -> None:
    # Another registry (another process, another test) knows only what it was given.
    other = builtin_registry()
    with pytest.raises(UnknownSpecialistError):
        other.specialist_for("lint")
    with pytest.raises(UnknownFunctionError):
        other.lookup("task_lint_ang")
    assert Registry().functions() == {}


def test_unknown_task_type_lists_the_known_ones(registry: Registry) -> None:
    with pytest.raises(UnknownSpecialistError) as caught:
        registry.specialist_for("poetry")
    assert str(caught.value) == (
        "no specialist handles task type 'poetry'; known: code_generation (Code_Ang), "
        "data_analysis (Crunch_Ang), design (Paint_Ang), research (Scout_Ang)"
    )
    with pytest.raises(
        UnknownSpecialistError, match=r"no specialist 'Nope_Ang'; known: Code_Ang, Crunch_Ang"
    ):
        registry.get_specialist("Nope_Ang")


def test_conflicts_are_refused(registry: Registry, lint_ang: Specialist) -> None:
    thief = Specialist(
        id="Other_Ang", task_types=("lint",), gpu=None, models=(), tools=(), function="task_lint_ang"
    )
    with pytest.raises(ValueError, match=r"task types \['lint'\] already registered"):
        registry.add_specialist(thief)
    with pytest.raises(ValueError, match="id 'Lint_Ang' already registered"):
        registry.add_specialist(LINT_ANG, body=lint)


def test_a_specialist_without_a_body_needs_an_existing_function(registry: Registry) -> None:
    ghost = Specialist(
        id="Ghost_Ang", task_types=("haunt",), gpu=None, models=(), tools=(), function="task_ghost"
    )
    with pytest.raises(
        UnknownFunctionError, match=r"no compute function 'task_ghost'; known: .*task_code_ang"
    ):
        registry.add_specialist(ghost)
    with pytest.raises(UnknownSpecialistError):
        registry.specialist_for("haunt")
    # Reusing a registered function under a second specialist is fine.
    alias = Specialist(
        id="Quant_Ang", task_types=("stats",), gpu="A10G", models=(), tools=(), function="task_crunch_ang"
    )
    assert registry.specialist_for(registry.add_specialist(alias).task_types[0]).function == "task_crunch_ang"
    assert registry.lookup("task_crunch_ang")


def test_bad_function_definitions_are_refused(registry: Registry) -> None:
    bad = Specialist(id="Bad_Ang", task_types=("bad",), gpu=None, models=(), tools=(), function="task-bad")
    with pytest.raises(ValueError, match="must be a Python identifier"):
        registry.add_specialist(bad, body=lint)
    with pytest.raises(ValueError, match="at least one task type"):
        Specialist(id="Empty_Ang", task_types=(), gpu=None, models=(), tools=(), function="f")
