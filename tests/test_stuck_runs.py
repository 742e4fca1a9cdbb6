"""A run that cannot make progress: `status` says why in one line, and lists skip it."""

from __future__ import annotations

import uuid

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.constants import PIPELINE_WORKFLOW
from boomerang.errors import RunStuckError
from tests.helpers import wait_until
from tests.test_cli import BOOMERANG, run, stack


async def test_status_of_a_run_whose_input_cannot_be_decoded_is_one_line(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    async with stack(dev_env, backend, event_store) as s:
        run_id = f"vp-undecodable-{uuid.uuid4().hex[:8]}"
        # No brief: no worker can decode this input, so every workflow task fails.
        await s.client.temporal.start_workflow(
            PIPELINE_WORKFLOW, {"tenant": "acme", "project_id": "p"}, id=run_id, task_queue=s.task_queue
        )

        async def stuck() -> RunStuckError | None:
            try:
                await s.client.status(run_id)
            except RunStuckError as exc:
                return exc
            return None

        error = await wait_until(stuck, what=f"{run_id} to be reported stuck")
        shown = await run(str(BOOMERANG), "status", run_id, env=s.env)
        await s.client.temporal.get_workflow_handle(run_id).terminate("test over")

    assert str(error).startswith(f"run {run_id} cannot make progress: its workflow task fails")
    assert str(error).endswith(
        "Failed decoding arguments: 1 validation error for PipelineInput: brief: Field required"
    )
    assert shown.code == 1 and shown.out == ""
    # The CLI prints the same one line (the attempt count may have grown meanwhile).
    [line] = shown.err.splitlines()
    assert line.startswith(f"run {run_id} cannot make progress") and line.endswith("brief: Field required")


def test_the_error_is_a_boomerang_error() -> None:
    with pytest.raises(RunStuckError):
        raise RunStuckError("x")
