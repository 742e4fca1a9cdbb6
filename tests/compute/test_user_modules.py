"""A specialist from a module outside the package: registered by name, planned, and run
the same way by the worker, the local compute processes, the Modal path and the app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.modal_backend import ModalBackend
from activities.records import EventSink
from boomerang.client import BoomerangClient
from boomerang.models.tasks import TaskInput
from modal_app.contracts import FunctionResult
from modal_app.registry import MODULES_ENV, RegistryModuleError, load_registry
from tests.backends.modal_double import RemoteService
from tests.compute import task
from worker import build_worker

PLUGIN = '''
"""A user's specialist, kept outside Boomerang's own package."""
from modal_app.contracts import FunctionOutput, TaskRequest
from modal_app.registry import Registry
from modal_app.specialists import Specialist

LINT_ANG = Specialist(id="Lint_Ang", task_types=("lint",), gpu="T4", models=(), tools=("ruff",),
                      function="task_lint_ang")


def lint(req: TaskRequest) -> FunctionOutput:
    source = str(req.payload.get("source", ""))
    long_lines = [i + 1 for i, line in enumerate(source.splitlines()) if len(line) > 20]
    return FunctionOutput(output={"long_lines": long_lines}, summary=f"{len(long_lines)} long lines")


def register(registry: Registry) -> None:
    registry.add_specialist(LINT_ANG, body=lint, cpu=1, memory_mib=512, timeout_s=60)
'''
SOURCE = "ok\nthis line is far too long\n"


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module `lint_plugin_<id>` importable here and by child processes."""
    name = f"lint_plugin_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, (str(tmp_path), os.environ.get("PYTHONPATH"))))
    )
    return name


async def test_the_local_backend_runs_a_user_specialist_in_its_compute_processes(plugin: str) -> None:
    backend = LocalBackend(max_concurrency=1, registry=load_registry([plugin]))
    try:
        raw = await backend.call("task_lint_ang", task("lint", "Lint_Ang", {"source": SOURCE}), timeout_s=30)
    finally:
        await backend.aclose()
    result = FunctionResult.model_validate(raw)
    assert result.output == {"long_lines": [2]} and (result.gpu_type, result.cpu) == ("T4", 1.0)


async def test_the_modal_path_runs_a_user_specialist(plugin: str) -> None:
    registry = load_registry([plugin])
    service = RemoteService(body=registry.call)
    backend = ModalBackend(
        function_lookup=service.function, call_lookup=service.call, poll_s=0.05, registry=registry
    )
    try:
        raw = await backend.call("task_lint_ang", task("lint", "Lint_Ang", {"source": SOURCE}), timeout_s=30)
    finally:
        await service.aclose()
    assert FunctionResult.model_validate(raw).output == {"long_lines": [2]}


def test_the_modal_app_deploys_a_user_specialist_with_its_resources(plugin: str) -> None:
    code = (
        "import json, modal_app.app as a; fn = a.task_lint_ang; f = fn.info(); "
        "src = sorted(fn._spec_.image._added_python_source_set); "
        "print(json.dumps([f.gpus, f.cpu, f.memory_mib, f.timeout, src]))"
    )
    env = {**os.environ, MODULES_ENV: plugin}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    gpus, cpu, memory, timeout, sources = json.loads(done.stdout.splitlines()[-1])
    assert (gpus, cpu, memory, timeout) == ([["T4", 1]], 1, 512, 60)
    assert sources == sorted(["modal_app", plugin])  # its source ships to the container


async def test_a_worker_plans_and_runs_a_user_specialist_end_to_end(
    plugin: str, dev_env: WorkflowEnvironment, event_store: EventSink
) -> None:
    backend = LocalBackend(max_concurrency=1, registry=load_registry([plugin]))
    task_queue = f"tq-{uuid.uuid4().hex}"
    try:
        async with build_worker(dev_env.client, task_queue=task_queue, backend=backend, events=event_store):
            client = BoomerangClient(dev_env.client, task_queue=task_queue)
            task_id = await client.start_task(
                TaskInput(tenant="acme", task_type="lint", payload={"source": SOURCE})
            )
            outcome = await client.task_result(task_id)
    finally:
        await backend.aclose()
    assert (outcome.boomer_ang_id, outcome.status, outcome.output) == (
        "Lint_Ang",
        "completed",
        {"long_lines": [2]},
    )


def test_a_module_that_cannot_register_says_so() -> None:
    with pytest.raises(RegistryModuleError, match="'no_such_module_here' cannot be imported"):
        load_registry(["no_such_module_here"])
    with pytest.raises(RegistryModuleError, match="'json' has no register\\(registry\\) function"):
        load_registry(["json"])
