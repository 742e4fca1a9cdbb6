"""Reminders and expiry on durable timers (time-skipping server: days pass in milliseconds)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from boomerang.models.decisions import RunStatus
from boomerang.models.pipeline import ExpiryPolicy, PipelineInput, PipelineSpec
from boomerang.pipelines import startup_validation_pipeline
from boomerang.store.queries import Pool, ledger_for_run
from tests.fixtures.temporal import StartWorker
from tests.helpers import BRIEF


def _first_checkpoint_proceeds_on_expiry() -> PipelineSpec:
    base = startup_validation_pipeline()
    first = base.phases[0]
    cp = first.checkpoints[0].model_copy(update={"on_expiry": ExpiryPolicy.PROCEED})
    return base.model_copy(
        update={"phases": (first.model_copy(update={"checkpoints": (cp,)}), *base.phases[1:])}
    )


async def test_reminder_after_a_day_then_expiry_after_seven(
    skip_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    async with start_worker(skip_env) as client:
        run_id = await client.start_pipeline(PipelineInput(tenant="acme", project_id="p", brief=BRIEF))
        await skip_env.sleep(timedelta(hours=25))
        status = await client.status(run_id)
        (pending,) = status.pending
        assert pending.name == "approve_founders_brief" and pending.reminded_at is not None
        assert pending.deadline is not None and pending.opened_at is not None
        assert pending.deadline - pending.opened_at == timedelta(days=7)

        await skip_env.sleep(timedelta(days=7))
        result = await client.result(run_id)

    assert result.status is RunStatus.EXPIRED
    assert result.reason == "approve_founders_brief expired with no decision"
    # Opened, reminded after a day, warned an hour before the deadline, expired: in order.
    kinds = [e.kind for e in (await ledger_for_run(store_pool, run_id)).entries]
    waits = [k for k in kinds if k.startswith("checkpoint_")]
    assert waits == ["checkpoint_opened", "checkpoint_reminded", "checkpoint_expiring", "checkpoint_expired"]


async def test_expiry_can_proceed_and_a_late_decision_is_refused(
    skip_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(skip_env) as client:
        run_id = await client.start_pipeline(
            PipelineInput(
                tenant="acme",
                project_id="p",
                brief=BRIEF,
                spec=_first_checkpoint_proceeds_on_expiry(),
            )
        )
        await skip_env.sleep(timedelta(days=8))
        handle = client.temporal.get_workflow_handle(run_id)
        await handle.signal("approve", {"checkpoint": "approve_founders_brief", "approver": "alice"})
        async with asyncio.timeout(30):
            while not (status := await client.status(run_id)).refused:
                await asyncio.sleep(0.02)
        # The time-skipping server is shared: a run left waiting with no worker would
        # hold its clock still for every later test.
        await handle.terminate("test finished")

    assert [cp.name for cp in status.pending] == ["approve_customer_profile"]
    assert status.status is RunStatus.AWAITING_APPROVAL
    assert len(status.refused) == 1
    assert status.refused[0].reason.startswith("checkpoint approve_founders_brief expired at ")
    assert status.decisions == ()
