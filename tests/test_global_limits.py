"""In-flight limits hold across worker processes and are fair between tenants.

Two `python worker.py` processes poll one task queue with the same Postgres. A user
compute module (registered through BOOMERANG_COMPUTE_MODULES) counts, inside the
compute function itself, how many of its calls run at once, and logs when each starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from boomerang.client import BoomerangClient
from boomerang.models.tasks import TaskInput
from tests.helpers import wait_until
from tests.test_crash import worker_process

LIMIT = 2
BACKLOG = 8
PROBE = '''
"""Counts concurrent calls across processes in files under $SLOT_PROBE_DIR."""
import fcntl, json, os, time
from pathlib import Path

from modal_app.contracts import FunctionOutput, TaskRequest
from modal_app.registry import Registry
from modal_app.specialists import Specialist

PROBE_ANG = Specialist(id="Probe_Ang", task_types=("probe",), gpu="T4", models=(), tools=(),
                       function="task_probe_ang")


def _update(delta: int, who: str) -> None:
    root = Path(os.environ["SLOT_PROBE_DIR"])
    with open(root / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads((root / "state.json").read_text()) if (root / "state.json").exists() else {
            "now": 0, "peak": 0, "starts": []}
        state["now"] += delta
        state["peak"] = max(state["peak"], state["now"])
        if delta > 0:
            state["starts"].append(who)
        (root / "state.json").write_text(json.dumps(state))


def probe(req: TaskRequest) -> FunctionOutput:
    who = str(req.payload["who"])
    _update(+1, who)
    try:
        time.sleep(float(req.payload.get("seconds", 1)))
    finally:
        _update(-1, who)
    return FunctionOutput(output={"who": who}, summary=who)


def register(registry: Registry) -> None:
    registry.add_specialist(PROBE_ANG, body=probe, cpu=1, memory_mib=256, timeout_s=120)
'''


@pytest.fixture
def probe_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The probe module on the workers' path, registered, with a limit of LIMIT calls."""
    name = f"slot_probe_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PROBE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, (str(tmp_path), os.environ.get("PYTHONPATH"))))
    )
    monkeypatch.setenv("BOOMERANG_COMPUTE_MODULES", name)
    monkeypatch.setenv("BOOMERANG_COMPUTE_FUNCTION_LIMITS", json.dumps({"task_probe_ang": LIMIT}))
    state = tmp_path / "probe"
    state.mkdir()
    monkeypatch.setenv("SLOT_PROBE_DIR", str(state))
    return state


def _state(probe_dir: Path) -> dict[str, object]:
    path = probe_dir / "state.json"
    return dict(json.loads(path.read_text())) if path.exists() else {"now": 0, "peak": 0, "starts": []}


async def test_two_workers_share_one_limit_and_a_second_tenant_is_not_starved(
    dev_env: WorkflowEnvironment, pg_conninfo: str, probe_dir: Path, tmp_path: Path
) -> None:
    task_queue = f"tq-limits-{uuid.uuid4().hex}"
    client = BoomerangClient(dev_env.client, task_queue=task_queue)

    def task(tenant: str, who: str) -> TaskInput:
        return TaskInput(tenant=tenant, task_type="probe", payload={"who": who, "seconds": 1.0})

    async with (
        worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=tmp_path / "w1.log"),
        worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=tmp_path / "w2.log"),
    ):
        backlog = [await client.start_task(task("big-co", f"big-{n}")) for n in range(BACKLOG)]

        async def running() -> bool | None:
            return True if len(_state(probe_dir)["starts"]) >= LIMIT else None  # type: ignore[arg-type]

        # The first tenant's backlog is queued behind the calls it already runs.
        await wait_until(running, what=f"{LIMIT} of big-co's calls to run")
        small = await client.start_task(task("small-co", "small-0"))
        outcomes = await asyncio.gather(*(client.task_result(t) for t in [*backlog, small]))

    assert all(o.status == "completed" for o in outcomes)
    state = _state(probe_dir)
    starts = list(state["starts"])  # type: ignore[call-overload]
    # Measured inside the compute function, over both workers: never above the limit,
    # and the limit was reached (the workers did run calls side by side).
    assert state["peak"] == LIMIT, state
    assert sorted(starts) == sorted([*(f"big-{n}" for n in range(BACKLOG)), "small-0"])
    # FIFO would run small-co's call last; a fair grant runs it at the next free slot,
    # ahead of most of big-co's backlog.
    after_small = starts[starts.index("small-0") + 1 :]
    assert len(after_small) >= BACKLOG - LIMIT - 2, starts
