"""A user's own simulation, swept by Boomerang without editing Boomerang.

A projectile with air drag, two parameters: the launch angle and the drag
coefficient. It is registered twice, as two deployments of one body, so that a
sweep's axis can choose the one each item runs on (`--variant-axis`):

- `projectile`: a quarter of a CPU, coarse time steps (10 ms);
- `projectile_fine`: one CPU, fine time steps (0.5 ms).

Name the module in the settings and every place that runs compute imports it:

    PYTHONPATH=examples BOOMERANG_COMPUTE_MODULES=my_lab.sims boomerang dev
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from modal_app.contracts import FunctionOutput
from modal_app.functions import ComputeFunction
from modal_app.registry import Registry

GRAVITY = 9.81  # m/s^2
SPEED = 50.0  # launch speed, m/s


class Launch(BaseModel):
    """One item's payload: what the sweep varies (extra fields are refused before it starts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    angle_deg: float = Field(gt=0, lt=90)
    drag: float = Field(ge=0, le=1, description="Linear drag per second.")


def fly(req: Launch, *, dt: float) -> FunctionOutput:
    """Euler steps until the projectile lands; its range, flight time and peak height."""
    angle = math.radians(req.angle_deg)
    x, y, vx, vy, t, peak = 0.0, 0.0, SPEED * math.cos(angle), SPEED * math.sin(angle), 0.0, 0.0
    while y >= 0:
        vx -= req.drag * vx * dt
        vy -= (GRAVITY + req.drag * vy) * dt
        x, y, t = x + vx * dt, y + vy * dt, t + dt
        peak = max(peak, y)
    return FunctionOutput(
        output={"range_m": round(x, 3), "flight_s": round(t, 3), "peak_m": round(peak, 3), "dt": dt},
        summary=f"{req.angle_deg:g} deg, drag {req.drag:g}: {x:.1f} m",
    )


def coarse(req: Launch) -> FunctionOutput:
    return fly(req, dt=0.01)


def fine(req: Launch) -> FunctionOutput:
    return fly(req, dt=0.0005)


def register(registry: Registry) -> None:
    registry.add_function(ComputeFunction("projectile", coarse, 60, request_model=Launch, cpu=0.25))
    registry.add_function(ComputeFunction("projectile_fine", fine, 60, request_model=Launch, cpu=1.0))
