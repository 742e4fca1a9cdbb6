"""Cancelling runs: compute stops, checkpoints close, who and why land in the Ledger, status `cancelled`."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from activities.records import EventSink
from boomerang.client import BoomerangClient
from boomerang.constants import PIPELINE_WORKFLOW, SA_STATUS, SA_TENANT
from boomerang.errors import CancelRefusedError, InvalidDecisionError, UnknownRunError
from boomerang.models.decisions import DecisionInput, RunStatus
from boomerang.models.events import EventKind
from boomerang.models.pipeline import Decision, PipelineInput
from boomerang.models.tasks import TaskInput
from boomerang.pipelines import startup_validation_pipeline
from boomerang.store.queries import Pool, charter_for_run
from tests.fixtures.temporal import StartWorker
from tests.helpers import BRIEF, CHECKPOINTS, wait_for_checkpoint, wait_until
from tests.slow_chat import until_asked, worker_behind_a_slow_chat_api
from workflows.webhooks import delivery_workflow_id

WEBHOOK = "http://127.0.0.1:9/hooks/boomerang"  # loopback; whether it answers does not matter here


async def _ledger_rows(pool: Pool, run_id: str, kind: EventKind) -> list[tuple[str, str, dict[str, Any]]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT event_key, status, details FROM ledger WHERE run_id = %s AND kind = %s ORDER BY seq",
            (run_id, kind.value),
        )
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


async def _cancelled_attempt(pool: Pool, run_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    async def probe() -> list[tuple[str, str, dict[str, Any]]] | None:
        rows = await _ledger_rows(pool, run_id, EventKind.COMPUTE_ATTEMPT)
        return rows if any(status == "cancelled" for _, status, _ in rows) else None

    return await wait_until(probe, what=f"a cancelled compute attempt of {run_id} in the Ledger")


async def _start_raw(client: BoomerangClient, inp: PipelineInput) -> str:
    """Start as `start_pipeline` does, minus front-door admission (the webhook URL is loopback)."""
    run_id = f"vp-cancel-{uuid.uuid4().hex[:8]}"
    await client.temporal.start_workflow(
        PIPELINE_WORKFLOW,
        inp,
        id=run_id,
        task_queue=client.task_queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(SA_TENANT, inp.tenant)]),
    )
    return run_id


async def test_cancelling_a_phase_mid_compute_stops_it_and_records_who_and_why(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    spec = startup_validation_pipeline()
    # A short heartbeat timeout: the cancel reaches the activity on its next heartbeat.
    quick = spec.phases[0].model_copy(update={"heartbeat_timeout": timedelta(seconds=2)})
    spec = spec.model_copy(update={"phases": (quick, *spec.phases[1:])})
    inp = PipelineInput(
        tenant="acme", project_id="clinic", brief=BRIEF, spec=spec,
        context={"work_seconds": 60}, webhook_url=WEBHOOK,
    )  # fmt: skip
    async with start_worker(dev_env) as client:
        run_id = await _start_raw(client, inp)

        async def computing() -> bool | None:
            charter = await charter_for_run(store_pool, run_id, "acme")
            return True if any(r.event == "phase_started" for r in charter) else None

        await wait_until(computing, what="phase 0 to start computing")
        started = time.monotonic()
        receipt = await client.cancel(run_id, by="alice", reason="wrong brief")
        result = await client.result(run_id)
        took = time.monotonic() - started
        status = await client.status(run_id)
        again = await client.cancel(run_id, by="bob")
        described = await client.temporal.get_workflow_handle(run_id).describe()
        with pytest.raises(InvalidDecisionError, match=rf"run {run_id} has finished \(cancelled\)"):
            await client.decide(run_id, DecisionInput(checkpoint=CHECKPOINTS[0], approver="alice"))
        attempts = await _cancelled_attempt(store_pool, run_id)

    assert (receipt.status, receipt.by, receipt.reason) == ("applied", "alice", "wrong brief")
    assert took < 30  # the phase would have worked for 60 s
    assert result.status is RunStatus.CANCELLED
    assert result.reason == "cancelled by alice: wrong brief"
    assert result.cancellation is not None and result.cancellation.by == "alice"
    assert status.status is RunStatus.CANCELLED and status.pending == ()
    assert described.typed_search_attributes.get(SA_STATUS) == "cancelled"
    # A second cancel is a no-op that names the first.
    assert (again.status, again.by, again.reason) == ("duplicate", "alice", "wrong brief")
    # The compute call was stopped, and what it ran for is costed.
    assert [s for _, s, _ in attempts] == ["cancelled"]

    charter = await charter_for_run(store_pool, run_id, "acme")
    steps = [r for r in charter if not r.event.startswith("webhook_")]  # the endpoint is not listening
    assert [r.event for r in steps] == ["pipeline_started", "phase_started", "pipeline_cancelled"]
    last = steps[-1]
    assert (last.status, last.message) == ("cancelled", "Validation cancelled")
    assert not any("alice" in r.message or "wrong brief" in r.message for r in charter)
    ((key, state, details),) = await _ledger_rows(store_pool, run_id, EventKind.PIPELINE_CANCELLED)
    assert state == "cancelled"
    assert (details["cancelled_by"], details["reason"], details["via"]) == ("alice", "wrong brief", "update")
    # The webhook of the cancellation was sent (its delivery is a workflow of its own).
    delivery = await dev_env.client.get_workflow_handle(delivery_workflow_id(key)).describe()
    assert delivery.id == delivery_workflow_id(key)


async def test_cancelling_at_a_checkpoint_closes_it_and_refuses_later_decisions(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(PipelineInput(tenant="acme", project_id="c", brief=BRIEF))
        await wait_for_checkpoint(client, run_id, CHECKPOINTS[0])
        receipt = await client.cancel(run_id, by="carol")
        result = await client.result(run_id)

        rejected = await client.start_pipeline(PipelineInput(tenant="acme", project_id="c", brief=BRIEF))
        await wait_for_checkpoint(client, rejected, CHECKPOINTS[0])
        await client.decide(
            rejected, DecisionInput(checkpoint=CHECKPOINTS[0], approver="a", decision=Decision.REJECT)
        )
        await client.result(rejected)
        with pytest.raises(CancelRefusedError) as refused:
            await client.cancel(rejected, by="carol")
        with pytest.raises(UnknownRunError, match="vp-no-such-run"):
            await client.cancel("vp-no-such-run", by="carol")

    assert (receipt.status, receipt.by, receipt.reason) == ("applied", "carol", None)
    assert result.status is RunStatus.CANCELLED and result.decisions == ()
    assert str(refused.value) == f"run {rejected} has finished (rejected); nothing to cancel"
    charter = await charter_for_run(store_pool, run_id, "acme")
    closed = [r for r in charter if r.event == "checkpoint_cancelled"]
    assert [(r.checkpoint, r.status) for r in closed] == [(CHECKPOINTS[0], "cancelled")]
    async with store_pool.connection() as conn:
        cur = await conn.execute("SELECT status FROM approvals WHERE run_id = %s", (run_id,))
        assert await cur.fetchall() == [("cancelled",)]
        cur = await conn.execute(
            "SELECT status, completed_at IS NOT NULL FROM runs WHERE run_id = %s", (run_id,)
        )
        assert await cur.fetchone() == ("cancelled", True)


async def test_a_decision_waiting_in_the_run_is_refused_once_it_is_cancelled(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(PipelineInput(tenant="acme", project_id="c", brief=BRIEF))
        await wait_for_checkpoint(client, run_id, CHECKPOINTS[0])
        # A signal for a later checkpoint is held in the run; cancelling drops it.
        await client.temporal.get_workflow_handle(run_id).signal(
            "approve", {"checkpoint": CHECKPOINTS[1], "approver": "alice"}
        )
        await client.cancel(run_id, by="carol")
        result = await client.result(run_id)
    assert result.status is RunStatus.CANCELLED and result.decisions == ()


async def test_temporal_cancel_ends_the_run_cancelled_with_the_canceller_unknown(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(PipelineInput(tenant="acme", project_id="c", brief=BRIEF))
        await wait_for_checkpoint(client, run_id, CHECKPOINTS[0])
        await client.temporal.get_workflow_handle(run_id).cancel()
        result = await client.result(run_id)
        again = await client.cancel(run_id, by="bob")

    assert result.status is RunStatus.CANCELLED
    assert result.reason == "cancelled by unknown (a Temporal cancel)"
    assert result.cancellation is not None
    assert (result.cancellation.by, result.cancellation.via) == (None, "temporal")
    assert (again.status, again.by) == ("duplicate", None)
    ((_, _, details),) = await _ledger_rows(store_pool, run_id, EventKind.PIPELINE_CANCELLED)
    assert (details["cancelled_by"], details["via"]) == ("unknown", "temporal")


async def test_cancelling_a_task_kills_its_compute_process(
    dev_env: WorkflowEnvironment, event_store: EventSink, store_pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = worker_behind_a_slow_chat_api(dev_env, event_store, monkeypatch, processes=1)
    async with slow as (client, server):
        task_id = await client.start_task(
            TaskInput(
                tenant="acme", task_type="code_generation", payload={"prompt": "add two numbers"},
                heartbeat_timeout=timedelta(seconds=2), max_attempts=1,
            )
        )  # fmt: skip
        await until_asked(server, what="the specialist to call the chat API")
        receipt = await client.cancel(task_id, by="dana", reason="not needed")
        outcome = await client.task_result(task_id)
        again = await client.cancel(task_id, by="erin")
        attempts = await _cancelled_attempt(store_pool, task_id)

    assert (receipt.status, receipt.by) == ("applied", "dana")
    assert (outcome.status, outcome.boomer_ang_id, outcome.task_type) == (
        "cancelled",
        "Code_Ang",
        "code_generation",
    )
    assert outcome.cancellation is not None and outcome.cancellation.reason == "not needed"
    assert (again.status, again.by) == ("duplicate", "dana")
    assert [s for _, s, _ in attempts] == ["cancelled"]
    assert len(server.seen) == 1  # the process was killed before it could ask again
    charter = await charter_for_run(store_pool, task_id, "acme")
    assert [(r.event, r.status) for r in charter] == [("task_started", "ok"), ("task_cancelled", "cancelled")]
    assert charter[-1].message == "Code_Ang was cancelled"
    ((_, _, details),) = await _ledger_rows(store_pool, task_id, EventKind.TASK_CANCELLED)
    assert (details["cancelled_by"], details["reason"]) == ("dana", "not needed")


async def test_a_finished_task_cannot_be_cancelled(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        task_id = await client.start_task(
            TaskInput(tenant="acme", task_type="data_analysis", payload={"columns": {"x": [1, 2, 3]}})
        )
        await client.task_result(task_id)
        with pytest.raises(
            CancelRefusedError, match=rf"^run {task_id} has finished \(completed\); nothing to cancel$"
        ):
            await client.cancel(task_id, by="carol")
