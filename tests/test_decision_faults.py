"""Decisions where they used to go wrong: re-opened checkpoints, misspelled names,
no worker to take them, and a worker restart that delivers a decision together with
the phase result that opens its checkpoint."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.api import create_app
from boomerang.client import BoomerangClient
from boomerang.errors import InvalidDecisionError
from boomerang.models.decisions import DecisionInput, ReceiptStatus, RunStatus
from boomerang.models.pipeline import Decision, PipelineInput
from boomerang.settings import Settings
from boomerang.store.queries import Pool
from boomerang.store.tokens import ApiRole
from tests.api import make_token
from tests.helpers import BRIEF, CHECKPOINTS, decide, wait_for_checkpoint, wait_until
from worker import WORKFLOWS, build_activities

FIRST = CHECKPOINTS[0]


def _input(**kw: Any) -> PipelineInput:
    return PipelineInput.model_validate({"tenant": "acme", "project_id": "p1", "brief": BRIEF, **kw})


@asynccontextmanager
async def _worker(
    env: WorkflowEnvironment,
    task_queue: str,
    backend: LocalBackend,
    events: EventSink,
    *,
    workflows: bool = True,
    activities: bool = True,
) -> AsyncIterator[None]:
    """A worker on `task_queue` that polls for workflow tasks, activity tasks, or both."""
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=WORKFLOWS if workflows else [],
        # A workflow-only worker still runs local activities; it takes no remote ones.
        activities=build_activities(backend, events),
        no_remote_activities=not activities,
        graceful_shutdown_timeout=timedelta(seconds=5),
    ):
        yield


async def test_a_decision_lands_only_on_the_opening_it_was_made_on(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    task_queue = f"tq-{uuid.uuid4().hex}"
    client = BoomerangClient(dev_env.client, task_queue=task_queue)
    async with _worker(dev_env, task_queue, backend, event_store):
        # Each phase works a second: the window between iterate and the re-opening.
        run_id = await client.start_pipeline(_input(context={"work_seconds": 1}))
        first = await wait_for_checkpoint(client, run_id, FIRST)
        assert first.pending[0].opening == 1

        iterated = await client.decide(
            run_id, DecisionInput(checkpoint=FIRST, approver="alice", decision=Decision.ITERATE, comment="x")
        )
        # At once, as the race that used to end runs `rejected`: a reject naming no opening.
        handle = dev_env.client.get_workflow_handle(run_id)
        await handle.signal("reject", {"checkpoint": FIRST, "approver": "bob"})

        second = await wait_for_checkpoint(client, run_id, FIRST)
        assert second.status is RunStatus.AWAITING_APPROVAL
        assert [cp.opening for cp in second.pending] == [2]
        assert [r.reason for r in second.refused] == [
            f"checkpoint {FIRST} is not pending: opening 1 was decided and opening 2 opens after "
            "phase onboarding runs again; decide it when it opens"
        ]

        with pytest.raises(InvalidDecisionError) as stale:
            await client.decide(run_id, DecisionInput(checkpoint=FIRST, approver="bob", opening=1))
        with pytest.raises(InvalidDecisionError) as future:
            await client.decide(run_id, DecisionInput(checkpoint=FIRST, approver="bob", opening=3))
        approved = await client.decide(run_id, DecisionInput(checkpoint=FIRST, approver="bob", opening=2))
        after = await wait_for_checkpoint(client, run_id, CHECKPOINTS[1])

    assert (iterated.status, iterated.opening) == (ReceiptStatus.APPLIED, 1)
    assert str(stale.value) == (
        f"this decision is for opening 1 of {FIRST}, which has closed; {FIRST} is now at opening 2 "
        "(open): look at it and decide with opening 2"
    )
    assert str(future.value) == f"opening 3 of {FIRST} has not opened yet; the latest is opening 2"
    assert (approved.status, approved.opening) == (ReceiptStatus.APPLIED, 2)
    assert [(d.decision, d.opening) for d in after.decisions] == [
        (Decision.ITERATE, 1),
        (Decision.APPROVE, 2),
    ]


async def test_misspelled_signal_and_update_names_are_refused_visibly(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    task_queue = f"tq-{uuid.uuid4().hex}"
    client = BoomerangClient(dev_env.client, task_queue=task_queue)
    async with _worker(dev_env, task_queue, backend, event_store):
        run_id = await client.start_pipeline(_input())
        await wait_for_checkpoint(client, run_id, FIRST)
        handle = dev_env.client.get_workflow_handle(run_id)
        await handle.signal("approval", {"checkpoint": FIRST, "approver": "alice"})
        with pytest.raises(WorkflowUpdateFailedError) as update:
            await handle.execute_update("approval", {"checkpoint": FIRST, "approver": "alice"})

        async def refused() -> Any:
            status = await client.status(run_id)
            return status if status.refused else None

        status = await wait_until(refused, what="the misspelled signal to be refused")

    [entry] = status.refused
    assert entry.reason == "unknown signal 'approval'; this run accepts approve, reject, decide"
    assert (entry.via, entry.payload) == ("signal:approval", {"checkpoint": FIRST, "approver": "alice"})
    assert status.decisions == () and [cp.name for cp in status.pending] == [FIRST]
    cause = update.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "unknown update 'approval'; this run accepts decide, cancel"


async def test_a_decision_no_worker_takes_is_pending_then_lands_once(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink, store_pool: Pool
) -> None:
    task_queue = f"tq-{uuid.uuid4().hex}"
    client = BoomerangClient(dev_env.client, task_queue=task_queue, decide_wait_s=1)
    async with _worker(dev_env, task_queue, backend, event_store):
        run_id = await client.start_pipeline(_input())
        await wait_for_checkpoint(client, run_id, FIRST)

    # No worker now: the client and the API both say `pending`, never an error.
    receipt = await client.decide(run_id, DecisionInput(checkpoint=FIRST, approver="alice"))
    app = create_app(client=client, pool=store_pool, settings=Settings(), timeout_s=5)
    token = await make_token(store_pool, "acme", ApiRole.APPROVER, "bob")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://boomerang.test") as http:
        body = {"run_id": run_id, "checkpoint": FIRST, "decision_id": "api-1"}
        headers = {"Authorization": f"Bearer {token}"}
        pending = await http.post("/hitl/approve", headers=headers, json=body)

        async with _worker(dev_env, task_queue, backend, event_store):
            status = await wait_for_checkpoint(client, run_id, CHECKPOINTS[1])
            # Sent again with the same id: the outcome, and still one decision.
            again = await http.post("/hitl/approve", headers=headers, json=body)
            resent = await client.decide(
                run_id, DecisionInput(checkpoint=FIRST, approver="alice", decision_id=receipt.decision_id)
            )

    assert receipt.status is ReceiptStatus.PENDING and receipt.decision_id.startswith("d-")
    assert pending.status_code == 202, pending.text
    assert pending.json()["status"] == "pending" and pending.json()["decision_id"] == "api-1"
    # The first to be taken landed; the other was for a checkpoint already decided.
    [landed] = status.decisions
    assert landed.decision_id in (receipt.decision_id, "api-1")
    if landed.decision_id == receipt.decision_id:
        assert resent.status is ReceiptStatus.DUPLICATE
        assert again.status_code == 409 and "already decided" in again.json()["detail"]
    else:
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        assert resent.status is ReceiptStatus.DUPLICATE


async def test_a_decision_delivered_with_the_result_that_opens_its_checkpoint_lands(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    """After a worker restart, one workflow task can hold both the phase result that opens
    a checkpoint and a decision for it; the decision must not be refused as `opens later`."""
    task_queue = f"tq-{uuid.uuid4().hex}"
    client = BoomerangClient(dev_env.client, task_queue=task_queue, decide_wait_s=30)
    handle = dev_env.client.get_workflow_handle
    async with _worker(dev_env, task_queue, backend, event_store, workflows=False):
        async with _worker(dev_env, task_queue, backend, event_store, activities=False):
            run_id = await client.start_pipeline(_input(context={"work_seconds": 3}))

            async def phase_running() -> bool | None:
                desc = await handle(run_id).describe()
                return True if desc.raw_description.pending_activities else None

            await wait_until(phase_running, what="phase 0 to be running")

        # The workflow worker is gone; the activity worker finishes phase 0 meanwhile, so
        # its result waits in history for the next workflow task, and so does the decision.
        async def phase_done() -> bool | None:
            desc = await handle(run_id).describe()
            return None if desc.raw_description.pending_activities else True

        await wait_until(phase_done, what="phase 0 to finish")
        sent = asyncio.create_task(client.decide(run_id, DecisionInput(checkpoint=FIRST, approver="alice")))
        await asyncio.sleep(0.5)  # the update reaches the server; nothing to poll for it
        async with _worker(dev_env, task_queue, backend, event_store, activities=False):
            receipt = await sent
            status = await wait_for_checkpoint(client, run_id, CHECKPOINTS[1])

    # Taken before or after the phase result in that workflow task, it lands on opening 1.
    assert (receipt.status, receipt.opening) == (ReceiptStatus.APPLIED, 1)
    assert [(d.checkpoint, d.opening) for d in status.decisions] == [(FIRST, 1)]


async def test_a_decision_for_the_checkpoint_a_running_phase_opens_is_held_for_it(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    """Sent while the phase that opens it runs, the client's decision is held and lands on
    that opening (the update is refused as not open yet); one for a checkpoint further
    on is refused at once."""
    task_queue = f"tq-{uuid.uuid4().hex}"
    client = BoomerangClient(dev_env.client, task_queue=task_queue)
    async with _worker(dev_env, task_queue, backend, event_store):
        run_id = await client.start_pipeline(_input(context={"work_seconds": 2}))
        await decide(client, run_id, FIRST)
        with pytest.raises(InvalidDecisionError, match=f"{CHECKPOINTS[2]} is not pending: it opens later"):
            await client.decide(run_id, DecisionInput(checkpoint=CHECKPOINTS[2], approver="alice"))
        with pytest.raises(WorkflowUpdateFailedError) as by_update:
            await dev_env.client.get_workflow_handle(run_id).execute_update(
                "decide", DecisionInput(checkpoint=CHECKPOINTS[1], approver="alice")
            )
        early = await client.decide(
            run_id, DecisionInput(checkpoint=CHECKPOINTS[1], approver="alice", decision_id="early")
        )
        status = await wait_for_checkpoint(client, run_id, CHECKPOINTS[2])
        again = await client.decide(
            run_id, DecisionInput(checkpoint=CHECKPOINTS[1], approver="alice", decision_id="early")
        )
    assert isinstance(by_update.value.cause, ApplicationError)
    assert by_update.value.cause.message == (
        f"checkpoint {CHECKPOINTS[1]} is not open yet: phase vpc_discovery is running and opens it next; "
        "send the decision again once it opens"
    )
    assert (early.status, early.opening) == (ReceiptStatus.HELD, 1)
    assert (again.status, again.opening) == (ReceiptStatus.DUPLICATE, 1)
    assert [(d.checkpoint, d.decision_id, d.opening, d.via) for d in status.decisions] == [
        (FIRST, status.decisions[0].decision_id, 1, "client"),
        (CHECKPOINTS[1], "early", 1, "client"),
    ]
