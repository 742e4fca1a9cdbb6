"""The Modal backend inside a real Temporal worker (dev server), over the real SDK to the local
Modal: a retried activity re-attaches to its call from the heartbeat details, a worker that
goes away leaves the call running for the next one, and a workflow cancel reaches the remote
call. The harness workflow isolates the backend; test_worker.py runs Boomerang's own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from grpclib import Status
from pydantic import BaseModel, ConfigDict
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.workflow import ActivityCancellationType

from activities.compute import ComputeError
from activities.modal_backend import CallCheckpoint, ModalBackend
from modal_app.contracts import FunctionResult
from tests.modal_servicer.servicer import ModalServicer

FUNCTION = "phase_0_onboarding"
PAYLOAD: dict[str, Any] = {
    "run_id": "r1",
    "phase": "onboarding",
    "brief": "We build an app. Clinics struggle with billing.",
}


class ModalCallInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    function: str
    payload: dict[str, Any]
    timeout_s: float


class ModalCallActivities:
    """A minimal activity over the backend, recording what each attempt was handed."""

    def __init__(self, backend: ModalBackend) -> None:
        self._backend = backend
        self.attempts: list[tuple[int, list[Any]]] = []

    @activity.defn(name="modal_call")
    async def modal_call(self, inp: ModalCallInput) -> dict[str, Any]:
        info = activity.info()
        self.attempts.append((info.attempt, list(info.heartbeat_details)))
        try:
            return await self._backend.call(inp.function, inp.payload, timeout_s=inp.timeout_s)
        except ComputeError as exc:
            raise ApplicationError(str(exc), type=exc.error_type, non_retryable=exc.permanent) from exc


@workflow.defn
class ModalCallWorkflow:
    @workflow.run
    async def run(self, inp: ModalCallInput) -> dict[str, Any]:
        return await workflow.execute_activity_method(
            ModalCallActivities.modal_call,
            inp,
            start_to_close_timeout=timedelta(minutes=1),
            heartbeat_timeout=timedelta(seconds=2),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3),
            # The workflow ends only once the activity has cancelled the remote call.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )


@asynccontextmanager
async def worker(client: Client, task_queue: str, acts: ModalCallActivities) -> AsyncIterator[Worker]:
    # The sandbox would re-import this test module (pytest, modal); the workflow is a harness.
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ModalCallWorkflow],
        activities=[acts.modal_call],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ) as w:
        yield w


def activities() -> ModalCallActivities:
    # Real activity hooks (heartbeat, heartbeat details, cancellation details), real SDK lookups.
    return ModalCallActivities(ModalBackend(poll_s=0.1))


async def start(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    inp = ModalCallInput(function=FUNCTION, payload=PAYLOAD, timeout_s=60)
    return await client.start_workflow(
        ModalCallWorkflow.run, inp, id=f"wf-{uuid.uuid4().hex}", task_queue=task_queue
    )


async def heartbeated_call_id(client: Client, handle: WorkflowHandle[Any, Any]) -> str:
    """The call id once the server holds it in the pending activity's heartbeat details."""
    while True:
        pending = (await handle.describe()).raw_description.pending_activities
        if pending and pending[0].heartbeat_details.payloads:
            details = await client.data_converter.decode(pending[0].heartbeat_details.payloads)
            return str(details[0]["call_id"])
        await asyncio.sleep(0.05)


async def test_a_retried_attempt_reattaches_from_heartbeat_details(
    dev_env: WorkflowEnvironment, modal_service: ModalServicer
) -> None:
    # Attempt 1 heartbeats the call id, then Modal's outputs service stays unavailable past
    # the SDK's own retries (1 + 3), so the attempt fails.
    modal_service.poll_errors.extend([Status.UNAVAILABLE] * 4)
    acts = activities()
    task_queue = f"tq-{uuid.uuid4().hex}"
    async with worker(dev_env.client, task_queue, acts):
        raw = await (await start(dev_env.client, task_queue)).result()
    FunctionResult.model_validate(raw)
    assert modal_service.spawns == 1
    (first, first_details), (second, second_details) = acts.attempts
    assert (first, first_details, second) == (1, [], 2)
    assert CallCheckpoint.model_validate(second_details[-1]).call_id == next(iter(modal_service.calls))


async def test_a_worker_that_goes_away_leaves_the_call_for_the_next_one(
    dev_env: WorkflowEnvironment, modal_service: ModalServicer
) -> None:
    modal_service.held = True
    task_queue = f"tq-{uuid.uuid4().hex}"
    async with worker(dev_env.client, task_queue, activities()):
        handle = await start(dev_env.client, task_queue)
        call_id = await heartbeated_call_id(dev_env.client, handle)
    # Shutting the worker down cancelled its activity, but not the call it was waiting on.
    assert modal_service.cancelled == []
    polls_before = modal_service.polls

    replacement = activities()
    async with worker(dev_env.client, task_queue, replacement):
        # The next attempt is waiting on the call.
        await modal_service.until(lambda: modal_service.polls > polls_before)
        modal_service.release()
        FunctionResult.model_validate(await handle.result())
    assert modal_service.spawns == 1
    assert CallCheckpoint.model_validate(replacement.attempts[-1][1][-1]).call_id == call_id


async def test_cancelling_the_workflow_cancels_the_remote_call(
    dev_env: WorkflowEnvironment, modal_service: ModalServicer
) -> None:
    modal_service.held = True
    task_queue = f"tq-{uuid.uuid4().hex}"
    async with worker(dev_env.client, task_queue, activities()):
        handle = await start(dev_env.client, task_queue)
        call_id = await heartbeated_call_id(dev_env.client, handle)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert isinstance(failed.value.cause, CancelledError)
    assert modal_service.cancelled == [call_id]
    assert modal_service.spawns == 1
