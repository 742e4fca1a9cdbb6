"""The demo run that `boomerang dev` starts: one at a time, however often it restarts.

The demo's run id is written to `<state dir>/demo-run` *before* the run is started,
so a restart (or a crash between the two steps) finds it: a demo still in flight is
shown again, not started again; only once it has ended does a new one start, under
a new id (a run id names one run in the Ledger, so ids are never reused). Describing
the workflow reads Temporal's own record of it, which, unlike a visibility query,
does not lag just after a restart; and Temporal itself refuses a second start of a
running workflow id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from boomerang.client import BoomerangClient, new_run_id
from boomerang.models.pipeline import PipelineInput

DEMO_TENANT = "demo"
DEMO_PROJECT = "clinic-billing"
DEMO_BRIEF = (
    "We build an API platform that automates billing for small clinics. "
    "Clinic managers struggle with manual insurance claims that waste hours every week "
    "and cause costly errors. We think they would pay $49 a month for automation that "
    "saves time and reduces rejected claims."
)


@dataclass(frozen=True, slots=True)
class DemoRun:
    run_id: str
    started_now: bool  # False: a demo already in flight, resumed


async def ensure_demo_run(client: BoomerangClient, state_dir: Path) -> DemoRun:
    """The demo run in flight under `state_dir`, started only when there is none."""
    pointer = state_dir / "demo-run"
    run_id = pointer.read_text().strip() if pointer.exists() else ""
    if run_id:
        status = await _status(client, run_id)
        if status is WorkflowExecutionStatus.RUNNING:
            return DemoRun(run_id, started_now=False)
        if status is not None:  # it ended: the next demo is a new run
            run_id = ""
    if not run_id:
        run_id = new_run_id(DEMO_PROJECT)
        _write_atomically(pointer, run_id)
    try:
        inp = PipelineInput(tenant=DEMO_TENANT, project_id=DEMO_PROJECT, brief=DEMO_BRIEF)
        await client.start_pipeline(inp, run_id=run_id)
    except WorkflowAlreadyStartedError:  # started by an earlier `boomerang dev` after all
        return DemoRun(run_id, started_now=False)
    return DemoRun(run_id, started_now=True)


async def _status(client: BoomerangClient, run_id: str) -> WorkflowExecutionStatus | None:
    """The run's status; None when Temporal has no such workflow."""
    try:
        described = await client.temporal.get_workflow_handle(run_id).describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    return described.status


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
