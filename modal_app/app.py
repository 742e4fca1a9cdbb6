"""The Modal app: `modal deploy modal_app/app.py`.

Each phase function wraps the same body the local backend runs (`functions.invoke`),
so what is tested here is what runs on Modal.
"""

from __future__ import annotations

from typing import Any

import modal

from modal_app.functions import MINUTES, invoke

app = modal.App("boomerang")

image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install("pydantic>=2.10,<3", "httpx>=0.28")
    .add_local_python_source("modal_app")
)

# LLM keys and other secrets live in Modal, never in the image or the code.
secrets = [modal.Secret.from_name("boomerang-secrets", required_keys=[])]

PHASE_OPTIONS: dict[str, Any] = {
    "image": image,
    "secrets": secrets,
    "timeout": 60 * MINUTES,  # phases typically take < 30 min; an hour is the ceiling
    "cpu": 2.0,  # LLM orchestration is CPU-bound when not waiting on the network
    "memory": 4096,  # agent state and dependencies fit in 4 GiB
    "retries": modal.Retries(max_retries=3, initial_delay=1.0),  # survive preemption
    "enable_memory_snapshot": True,  # snapshot imports for faster cold starts
}


@app.function(**PHASE_OPTIONS)
def phase_0_onboarding(payload: dict[str, Any]) -> dict[str, Any]:
    return invoke("phase_0_onboarding", payload)


@app.function(**PHASE_OPTIONS)
def phase_1_vpc_discovery(payload: dict[str, Any]) -> dict[str, Any]:
    return invoke("phase_1_vpc_discovery", payload)


@app.function(**PHASE_OPTIONS)
def phase_2_desirability(payload: dict[str, Any]) -> dict[str, Any]:
    return invoke("phase_2_desirability", payload)


@app.function(**PHASE_OPTIONS)
def phase_3_feasibility(payload: dict[str, Any]) -> dict[str, Any]:
    return invoke("phase_3_feasibility", payload)


@app.function(**PHASE_OPTIONS)
def phase_4_viability(payload: dict[str, Any]) -> dict[str, Any]:
    return invoke("phase_4_viability", payload)
