"""Steps the tests share: waits on conditions (polled, never fixed sleeps) and decisions."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from boomerang.client import BoomerangClient
from boomerang.models.decisions import DecisionInput, DecisionReceipt, PipelineStatus, RunStatus
from boomerang.models.events import EventKind
from boomerang.models.pipeline import Decision, PipelineSpec
from boomerang.pipelines import startup_validation_pipeline

T = TypeVar("T")

POLL_S = 0.05
CHECKPOINTS = tuple(c.name for p in startup_validation_pipeline().phases for c in p.checkpoints)
PHASES = tuple(p.name for p in startup_validation_pipeline().phases)
BRIEF = (
    "We build an API platform for small clinics. Clinics struggle with manual billing "
    "errors that waste hours. We think they would pay for automation that saves time."
)


async def wait_until(probe: Callable[[], Awaitable[T | None]], *, what: str, timeout_s: float = 60) -> T:
    """Call `probe` until it returns something other than None; fail after `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                found = await probe()
                if found is not None:
                    return found
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout_s:g}s waiting for {what}") from None


async def wait_for_checkpoint(
    client: BoomerangClient, run_id: str, name: str, *, timeout_s: float = 60
) -> PipelineStatus:
    """The run's status once checkpoint `name` is pending."""

    async def probe() -> PipelineStatus | None:
        status = await client.status(run_id)
        if status.status not in (RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL):
            raise AssertionError(f"{run_id} ended ({status.status.value}) before {name} opened")
        return status if any(cp.name == name for cp in status.pending) else None

    return await wait_until(probe, what=f"{name} to be pending on {run_id}", timeout_s=timeout_s)


async def wait_for_poller(
    client: Client, task_queue: str, *, identity_prefix: str, timeout_s: float = 60
) -> None:
    """Wait until a worker whose identity starts with `identity_prefix` polls `task_queue`."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )

    async def probe() -> bool | None:
        reply = await client.workflow_service.describe_task_queue(request)
        return True if any(p.identity.startswith(identity_prefix) for p in reply.pollers) else None

    await wait_until(probe, what=f"worker {identity_prefix} polling {task_queue}", timeout_s=timeout_s)


def expected_events(
    spec: PipelineSpec | None = None,
) -> Counter[tuple[str, str | None, str | None]]:
    """(event, phase, checkpoint) of a run approved straight through: each exactly once."""
    spec = spec or startup_validation_pipeline()
    expected: Counter[tuple[str, str | None, str | None]] = Counter()
    expected[(EventKind.PIPELINE_STARTED.value, None, None)] += 1
    for phase in spec.phases:
        expected[(EventKind.PHASE_STARTED.value, phase.name, None)] += 1
        for _ in phase.tasks:
            expected[(EventKind.TASK_STARTED.value, phase.name, None)] += 1
            expected[(EventKind.TASK_COMPLETED.value, phase.name, None)] += 1
        expected[(EventKind.PHASE_COMPLETED.value, phase.name, None)] += 1
        for cp in phase.checkpoints:
            expected[(EventKind.CHECKPOINT_OPENED.value, phase.name, cp.name)] += 1
            expected[(EventKind.CHECKPOINT_DECIDED.value, phase.name, cp.name)] += 1
    expected[(EventKind.PIPELINE_COMPLETED.value, spec.phases[-1].name, None)] += 1
    return expected


async def decide(
    client: BoomerangClient,
    run_id: str,
    checkpoint: str,
    decision: Decision = Decision.APPROVE,
    **kw: object,
) -> DecisionReceipt:
    """Wait for `checkpoint` to open, then decide it (by update) as alice."""
    await wait_for_checkpoint(client, run_id, checkpoint)
    return await client.decide(
        run_id,
        DecisionInput.model_validate(
            {"checkpoint": checkpoint, "approver": "alice", "decision": decision, **kw}
        ),
    )


async def approve_through(client: BoomerangClient, run_id: str, checkpoints: Sequence[str]) -> None:
    for name in checkpoints:
        await decide(client, run_id, name)
