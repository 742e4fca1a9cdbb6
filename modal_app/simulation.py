"""`sweep_simulate`: a small numeric simulation for trying sweeps honestly on a laptop.

Random walkers with drift (NumPy): `walkers` x `steps` draws, so its cost grows with
its parameters. Returns the mean and spread of where they end, and the share that
crossed `barrier`. `fail_rate` makes that share of seeds fail (a retryable error),
for trying `retries` and `on_item_failure`.

    boomerang sweep start --function sweep_simulate \\
        --grid '{"walkers": [1000, 10000], "steps": [100, 1000], "drift": [0, 0.1]}'
"""

from __future__ import annotations

import time

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from modal_app.contracts import FunctionOutput
from modal_app.errors import BoomerangError
from modal_app.functions import ComputeFunction


class SimulationRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    walkers: int = Field(default=1000, ge=1, le=1_000_000)
    steps: int = Field(default=100, ge=1, le=100_000)
    drift: float = Field(default=0.0, ge=-10, le=10)
    barrier: float = Field(default=10.0, gt=0)
    seed: int = Field(default=0, ge=0)
    # Extra wall time, to stand in for a longer job in demos and benchmarks.
    sleep_s: float = Field(default=0.0, ge=0, le=600)
    # The share of seeds that fail on purpose (deterministic per seed).
    fail_rate: float = Field(default=0.0, ge=0, le=1)


class SimulationFailedError(BoomerangError, RuntimeError):
    """The simulation failed on purpose (fail_rate)."""


def simulate(req: SimulationRequest) -> FunctionOutput:
    rng = np.random.default_rng(req.seed)
    if req.fail_rate and rng.random() < req.fail_rate:
        raise SimulationFailedError(f"seed {req.seed} failed on purpose (fail_rate {req.fail_rate})")
    if req.sleep_s:
        time.sleep(req.sleep_s)
    position = np.zeros(req.walkers)
    crossed = np.zeros(req.walkers, dtype=bool)
    # Chunks of steps keep memory at walkers x 1,000 floats whatever `steps` is.
    for start in range(0, req.steps, 1000):
        n = min(1000, req.steps - start)
        path = position[:, None] + np.cumsum(rng.normal(req.drift, 1.0, (req.walkers, n)), axis=1)
        crossed |= (np.abs(path) >= req.barrier).any(axis=1)
        position = path[:, -1]
    return FunctionOutput(
        output={
            "mean": float(position.mean()),
            "std": float(position.std()),
            "crossed": float(crossed.mean()),
            "draws": req.walkers * req.steps,
        },
        summary=f"{req.walkers} walkers x {req.steps} steps",
        device="cpu",
    )


SIMULATE = ComputeFunction(
    "sweep_simulate", simulate, 10 * 60, request_model=SimulationRequest, cpu=1.0, memory_mib=1024
)
