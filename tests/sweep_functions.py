"""A user compute module for the sweep tests (BOOMERANG_COMPUTE_MODULES=tests.sweep_functions).

`sweep_probe` measures concurrency where it happens, inside the compute processes:
each call adds a marker file, counts the markers, and appends `start`/`end` lines to
a log in `probe_dir`, so the tests read the real peak and the real order.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from modal_app.contracts import FunctionOutput
from modal_app.functions import ComputeFunction
from modal_app.registry import Registry


class ProbeRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    x: int
    probe_dir: str
    batch: str = ""
    sleep_s: float = 0.05
    fail: bool = False
    # Fail (retryably) this many times first, counted in probe_dir.
    flaky: int = 0
    big: bool = False


def _log(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def probe(req: ProbeRequest) -> FunctionOutput:
    root = Path(req.probe_dir)
    running = root / "running"
    running.mkdir(parents=True, exist_ok=True)
    marker = running / uuid.uuid4().hex
    marker.touch()
    try:
        _log(root / "log", f"start {req.x} {req.batch} {len(list(running.iterdir()))}")
        time.sleep(req.sleep_s)
        if req.fail:
            raise ValueError(f"item x={req.x} fails on purpose")
        tries = root / f"tries-{req.x}"
        _log(tries, "try")
        if len(tries.read_text().splitlines()) <= req.flaky:
            raise RuntimeError(f"item x={req.x} is flaky on purpose")
        _log(root / "log", f"end {req.x} {req.batch} 0")
    finally:
        marker.unlink()
    output: dict[str, object] = {"y": req.x * req.x}
    if req.big:
        output["blob"] = "z" * 40_000
    return FunctionOutput(output=output)


def register(registry: Registry) -> None:
    registry.add_function(ComputeFunction("sweep_probe", probe, 120, request_model=ProbeRequest, cpu=0.25))
