"""The Modal app: imports offline, deploys what the registry and the price table say, replies as data."""

from __future__ import annotations

import ast
import importlib.util
import shlex
import subprocess
import sys
from dataclasses import replace
from importlib.metadata import distribution, metadata, packages_distributions
from pathlib import Path
from typing import Any

import pytest
from modal._image import LATEST_IMAGE_BUILDER_VERSION
from packaging.requirements import Requirement

from boomerang.pricing import load_price_table
from modal_app import functions
from modal_app.registry import builtin_registry
from tests.compute import task
from tests.modal_servicer.servicer import deployed_functions

REGISTRY = builtin_registry()


def test_app_imports_without_network_or_credentials() -> None:
    # A fresh interpreter with no Modal token and an unroutable proxy: importing must not dial out.
    env = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "PATH": ""}
    code = "import modal_app.app as a; print(a.app.name)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "boomerang"


# -- the deploy check: what `modal deploy modal_app/app.py` would create, read offline ------------

# Packages a function's image carries beyond what modal_app imports (GPU libraries it
# imports lazily, when they are there).
EXTRA_PACKAGES = {"task_crunch_ang": {"cupy-cuda12x"}}
# Every image: the tracing SDK and its exporter, imported only when tracing is on.
TRACING_PACKAGES = {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"}
SECRETS = ["modal.Secret.from_name('boomerang-secrets')"]
RETRIES = 2  # a lost or preempted container; a bad input is answered, not retried


def _image_commands(image: Any) -> list[str]:
    """The Dockerfile commands of an image's layers, base first, as `modal deploy` sends them.

    Modal keeps them in each layer's loader (private API): the only offline view there is.
    """
    loader = image._load
    cells = dict(
        zip(loader.__code__.co_freevars, (c.cell_contents for c in loader.__closure__ or ()), strict=True)
    )
    bases = [
        *(cells.get("base_images") or {}).values(),
        *([cells["base_image"]] if "base_image" in cells else []),
    ]
    commands = [command for base in bases for command in _image_commands(base)]
    if cells.get("dockerfile_function"):
        commands += cells["dockerfile_function"](LATEST_IMAGE_BUILDER_VERSION).commands
    return commands


def _pip_installed(image: Any) -> dict[str, str]:
    """Requirement name -> requirement, for every `pip install` in the image."""
    installed: dict[str, str] = {}
    for command in _image_commands(image):
        if "pip install" in command and "--upgrade pip" not in command:
            for arg in shlex.split(command.split("pip install", 1)[1]):
                installed[Requirement(arg).name] = arg
    return installed


def _third_party_imports() -> set[str]:
    """Distributions modal_app imports at module level (what its containers need installed)."""
    modules: set[str] = set()
    for source in Path(functions.__file__).parent.glob("*.py"):
        for node in ast.parse(source.read_text()).body:
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from opentelemetry import trace`: a namespace package is known by its submodule.
                modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    local = {"modal", "modal_app", "__future__"}  # Modal provides `modal` in every container
    skip = local | set(sys.stdlib_module_names)
    return {_distribution_of(m) for m in modules if m.split(".")[0] not in skip}


def _distribution_of(module: str) -> str:
    """The distribution that installs `module` (or its parent, when `module` is a name
    imported from it); a namespace package (opentelemetry) has several."""
    candidates = packages_distributions()[module.split(".")[0]]
    if len(candidates) == 1:
        return candidates[0].lower()
    origin = _module_file(module)
    for name in candidates:
        dist = distribution(name)
        if any(Path(str(dist.locate_file(f))).resolve() == origin for f in dist.files or ()):
            return name.lower()
    raise AssertionError(f"no distribution installs {module}")


def _module_file(module: str) -> Path:
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a class or function, not a submodule
        spec = None
    if spec is None or not spec.origin:
        parent = module.rpartition(".")[0]
        assert parent, f"{module} is a namespace package: import from one of its modules"
        return _module_file(parent)
    return Path(spec.origin).resolve()


def test_every_registered_function_is_deployed_and_nothing_else() -> None:
    from modal_app import app

    deployed = deployed_functions(app)
    assert set(deployed) == set(REGISTRY.functions())
    assert {s.function for s in REGISTRY.specialists()} <= set(deployed)


@pytest.mark.parametrize("name", sorted(REGISTRY.functions()))
def test_each_function_deploys_with_its_registered_and_priced_resources(name: str) -> None:
    from modal_app import app

    fn = REGISTRY.lookup(name)
    info = deployed_functions(app)[name].info()  # offline: what the deploy request will carry
    assert (info.cpu, info.memory_mib, info.timeout) == (fn.cpu, fn.memory_mib, int(fn.timeout_s))
    assert (info.max_retries, info.secrets) == (RETRIES, SECRETS)
    assert info.gpus == ([(fn.gpu, 1)] if fn.gpu else [])
    table = load_price_table(env={})
    for gpu, count in info.gpus:
        # Costing uses the registry's GPU: the deployed one must cost exactly the same.
        assert table.gpu_rate(f"{gpu}:{count}") == table.gpu_rate(fn.gpu or "")
    for specialist in REGISTRY.specialists():
        if specialist.function == name:
            assert specialist.gpu == fn.gpu, (
                f"{specialist.id} is priced for {specialist.gpu}, deployed on {fn.gpu}"
            )


@pytest.mark.parametrize("name", sorted(REGISTRY.functions()))
def test_each_function_image_installs_what_modal_app_imports(name: str) -> None:
    from modal_app import app

    image: Any = deployed_functions(app)[name]._spec_.image
    installed = _pip_installed(image)
    needed = _third_party_imports()
    assert needed, "modal_app imports no third-party package at all?"
    assert set(installed) == needed | TRACING_PACKAGES | EXTRA_PACKAGES.get(name, set())
    # The image pins what the project is tested with (pyproject's own requirement).
    pinned = {
        Requirement(r).name: Requirement(r).specifier
        for r in metadata("boomerang").get_all("Requires-Dist") or []
    }
    for package in needed:
        assert Requirement(installed[package]).specifier == pinned[package], package
    assert image._added_python_source_set == frozenset({"modal_app"})


def test_the_modal_functions_reply_as_data() -> None:
    from modal_app import app

    crunch: Any = deployed_functions(app)["task_crunch_ang"]  # generated from the registry
    ok = crunch.local(task("data_analysis", "Crunch_Ang", {"columns": {"x": [1, 2, 3]}}))
    assert ok["ok"]["output"]["columns"]["x"]["mean"] == 2.0
    bad = crunch.local(task("data_analysis", "Crunch_Ang", {"columns": {"x": ["?"]}}))
    assert bad["error"]["type"] == "PayloadError" and bad["error"]["permanent"] is True
    assert "payload.columns.x.0" in bad["error"]["message"]


def test_call_reports_retryable_failures_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_req: object) -> dict[str, object]:
        raise ConnectionError("the network blinked")

    registry = builtin_registry()
    fn = registry.lookup("phase_0_onboarding")
    registry.add_function(replace(fn, body=broken), replace=True)
    reply = registry.call(fn.name, {"run_id": "r", "phase": "onboarding", "brief": "b"})
    assert reply["error"]["type"] == "ConnectionError" and reply["error"]["permanent"] is False
    assert "the network blinked" in reply["error"]["traceback"]
