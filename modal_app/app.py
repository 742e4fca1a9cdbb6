"""The Modal app: `modal deploy modal_app/app.py`.

One Modal function per registered compute function, generated from the registry
(`modal_app.registry`): the built-ins plus the user modules named in
`BOOMERANG_COMPUTE_MODULES` when you deploy. A specialist added in a user module is
deployed by the same command, with the GPU, CPU, memory and timeout it is priced
at; there is no wrapper to write. Each function runs `Registry.call`, the same body
the local backend runs, and replies `{"ok": FunctionResult}` or `{"error":
FunctionError}`: a bad payload is answered once instead of being retried on a GPU by
the platform, whose `retries` are left for what only it can see (a lost or
preempted container).

Why one function per compute function rather than one per hardware profile that
dispatches by name: Modal scales, bills and shows logs per function, the backend
looks a call up by its function name, and warm pools are set per function; one
dispatcher per GPU would mix a cheap phase with an expensive specialist in one pool.

Importing this module makes no network call: secrets and the image are resolved at
`modal deploy` / `modal run`.
"""

from __future__ import annotations

from typing import Any

import modal

from modal_app.functions import MINUTES, ComputeFunction
from modal_app.registry import MODULES_ENV, load_registry, modules_from_env

# Built here and again in every container, from the same list: the image carries it.
registry = load_registry(modules_from_env())

app = modal.App("boomerang")

base = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install(
        "pydantic>=2.10,<3", "httpx>=0.28", "structlog>=24.4", "numpy>=2.0", "opentelemetry-api>=1.30"
    )
    # Spans of a function join its caller's trace when OTEL_* (in the Secret) says where to send them.
    .pip_install("opentelemetry-sdk>=1.30", "opentelemetry-exporter-otlp-proto-http>=1.30")
    .env({MODULES_ENV: ",".join(registry.modules)})
)
# Local source goes last: Modal refuses build steps after `add_local_*` layers. User
# modules ship beside modal_app, by their top-level package.
_SOURCES = ("modal_app", *sorted({m.split(".")[0] for m in registry.modules} - {"modal_app"}))
image = base.add_local_python_source(*_SOURCES)
# Crunch_Ang computes on the GPU through CuPy; the wheel carries its CUDA libraries.
gpu_image = base.pip_install("cupy-cuda12x>=13").add_local_python_source(*_SOURCES)
GPU_IMAGE_FUNCTIONS = frozenset({"task_crunch_ang"})

# LLM keys (OPENROUTER_API_KEY or BOOMERANG_LLM_API_KEY) live in Modal, never in the
# image or the code; without one the functions answer through the offline provider.
secrets = [modal.Secret.from_name("boomerang-secrets", required_keys=[])]


def _options(fn: ComputeFunction[Any]) -> dict[str, Any]:
    return {
        "image": gpu_image if fn.name in GPU_IMAGE_FUNCTIONS else image,
        "secrets": secrets,
        "gpu": fn.gpu,  # from the registry: the GPU the Ledger prices the call at
        "cpu": fn.cpu,  # ditto: billed per core-second
        "memory": fn.memory_mib,  # ditto: billed per GiB-second
        "timeout": int(fn.timeout_s),  # the registry's ceiling, the same one the local backend enforces
        "retries": modal.Retries(max_retries=2, initial_delay=1.0),  # a lost container, not a bad input
        # An idle GPU bills by the second: long enough for a burst of tasks to reuse one
        # container. CPU phases are called minutes apart within a run: a little longer.
        "scaledown_window": 60 if fn.gpu else 2 * MINUTES,
        "enable_memory_snapshot": True,  # snapshot the imported modules: faster cold starts
    }


def _deploy(fn: ComputeFunction[Any]) -> Any:
    def handler(payload: dict[str, Any]) -> dict[str, Any]:
        return registry.call(fn.name, payload)

    # Modal finds a function in its container by module and name: make this one a
    # module-level name (it is bound in globals below), not a closure's.
    handler.__name__ = handler.__qualname__ = fn.name
    handler.__module__ = __name__
    return app.function(**_options(fn))(handler)


for _fn in registry.functions().values():
    globals()[_fn.name] = _deploy(_fn)
