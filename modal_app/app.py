"""The Modal app: `modal deploy modal_app/app.py`.

Each function wraps the same body the local backend runs (`functions.call`, which is
`invoke` with failures returned as data), so what is tested here is what runs on
Modal. Every function replies `{"ok": FunctionResult}` or `{"error": FunctionError}`:
a bad payload is answered once instead of being retried on a GPU by the platform,
whose `retries` are left for what only it can see (a lost or preempted container).

Resources come from the registry (`functions.py`, `specialists.py`), so the costing
of a result uses exactly what is deployed here. Importing this module makes no
network call: secrets and the image are resolved at `modal deploy` / `modal run`.
"""

from __future__ import annotations

from typing import Any

import modal

from modal_app.functions import MINUTES, call, lookup

app = modal.App("boomerang")

base = modal.Image.debian_slim(python_version="3.11").pip_install(
    "pydantic>=2.10,<3", "httpx>=0.28", "structlog>=24.4", "numpy>=2.0"
)
# Local source goes last: Modal refuses build steps after `add_local_*` layers.
image = base.add_local_python_source("modal_app")
# Crunch_Ang computes on the GPU through CuPy; the wheel carries its CUDA libraries.
gpu_image = base.pip_install("cupy-cuda12x>=13").add_local_python_source("modal_app")

# LLM keys (OPENROUTER_API_KEY or BOOMERANG_LLM_API_KEY) live in Modal, never in the
# image or the code; without one the functions answer through the offline provider.
secrets = [modal.Secret.from_name("boomerang-secrets", required_keys=[])]


def _options(name: str, *, gpu_image_needed: bool = False, warm_s: int) -> dict[str, Any]:
    fn = lookup(name)
    return {
        "image": gpu_image if gpu_image_needed else image,
        "secrets": secrets,
        "gpu": fn.gpu,  # from the registry: the GPU the Ledger prices the call at
        "cpu": fn.cpu,  # ditto: billed per core-second
        "memory": fn.memory_mib,  # ditto: billed per GiB-second
        "timeout": int(fn.timeout_s),  # the registry's ceiling, the same one the local backend enforces
        "retries": modal.Retries(max_retries=2, initial_delay=1.0),  # a lost container, not a bad input
        "scaledown_window": warm_s,  # keep a container warm between a run's calls, then stop paying
        "enable_memory_snapshot": True,  # snapshot the imported modules: faster cold starts
    }


# Phases: CPU only, called a few times per run minutes apart: a short warm window.
@app.function(**_options("phase_0_onboarding", warm_s=2 * MINUTES))
def phase_0_onboarding(payload: dict[str, Any]) -> dict[str, Any]:
    return call("phase_0_onboarding", payload)


@app.function(**_options("phase_1_vpc_discovery", warm_s=2 * MINUTES))
def phase_1_vpc_discovery(payload: dict[str, Any]) -> dict[str, Any]:
    return call("phase_1_vpc_discovery", payload)


@app.function(**_options("phase_2_desirability", warm_s=2 * MINUTES))
def phase_2_desirability(payload: dict[str, Any]) -> dict[str, Any]:
    return call("phase_2_desirability", payload)


@app.function(**_options("phase_3_feasibility", warm_s=2 * MINUTES))
def phase_3_feasibility(payload: dict[str, Any]) -> dict[str, Any]:
    return call("phase_3_feasibility", payload)


@app.function(**_options("phase_4_viability", warm_s=2 * MINUTES))
def phase_4_viability(payload: dict[str, Any]) -> dict[str, Any]:
    return call("phase_4_viability", payload)


# Specialists: A10G per the seed. An idle GPU bills by the second, so the warm
# window is short: long enough for a burst of tasks to reuse one container.
@app.function(**_options("task_code_ang", warm_s=60))
def task_code_ang(payload: dict[str, Any]) -> dict[str, Any]:
    return call("task_code_ang", payload)


@app.function(**_options("task_scout_ang", warm_s=60))
def task_scout_ang(payload: dict[str, Any]) -> dict[str, Any]:
    return call("task_scout_ang", payload)


@app.function(**_options("task_paint_ang", warm_s=60))
def task_paint_ang(payload: dict[str, Any]) -> dict[str, Any]:
    return call("task_paint_ang", payload)


@app.function(**_options("task_crunch_ang", gpu_image_needed=True, warm_s=60))
def task_crunch_ang(payload: dict[str, Any]) -> dict[str, Any]:
    return call("task_crunch_ang", payload)
