"""Events a workflow hands to the activity it starts (`EventLog.carried_by`) are written once,
in the order they happened, whether that activity writes them or fails before it could."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

# The sandbox re-imports this module to run the probe workflow: everything else passes through.
with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from activities.records import RecordActivities, record_all
    from boomerang.models.events import EventKind, RunEvent
    from workflows.recording import EventLog


class StepInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    events: tuple[RunEvent, ...]
    write: bool


class MemorySink:
    """Keeps each key once, in the order written (what `EventStore` guarantees of a stream)."""

    def __init__(self) -> None:
        self.rows: list[RunEvent] = []

    async def record(self, event: RunEvent) -> bool:
        if any(r.event_key == event.event_key for r in self.rows):
            return False
        self.rows.append(event)
        return True


SINK = MemorySink()


@activity.defn(name="hand_off_step")
async def step(inp: StepInput) -> None:
    if not inp.write:
        raise ApplicationError("failed before writing anything", non_retryable=True)
    await record_all(SINK, inp.events)


@workflow.defn(name="HandOffProbe")
class HandOffProbe:
    @workflow.run
    async def run(self, write: bool) -> str:
        log = EventLog(run_id=workflow.info().workflow_id, tenant="acme")
        writer = log.start()
        log.emit(EventKind.PIPELINE_STARTED, message="first")
        log.emit(EventKind.PHASE_STARTED, phase="p", message="second")

        async def start(handed: tuple[RunEvent, ...]) -> None:
            await workflow.execute_activity(
                step,
                StepInput(events=handed, write=write),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )

        outcome = "ok"
        try:
            await log.carried_by(start)
        except ActivityError:
            outcome = "failed"
        log.emit(EventKind.PHASE_COMPLETED, phase="p", message="third")
        await log.flush()
        writer.cancel()
        return outcome


async def _run(env: WorkflowEnvironment, write: bool) -> tuple[str, list[str]]:
    task_queue = f"tq-{uuid.uuid4().hex}"
    run_id = f"hand-off-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[HandOffProbe],
        activities=[step, RecordActivities(SINK).record_events],
    ):
        outcome = await env.client.execute_workflow(HandOffProbe.run, write, id=run_id, task_queue=task_queue)
    return outcome, [r.message for r in SINK.rows if r.run_id == run_id]


async def test_the_activity_writes_what_it_was_handed_and_the_writer_what_came_after(
    dev_env: WorkflowEnvironment,
) -> None:
    assert await _run(dev_env, write=True) == ("ok", ["first", "second", "third"])


async def test_events_an_activity_failed_to_write_are_written_by_the_run_in_order(
    dev_env: WorkflowEnvironment,
) -> None:
    assert await _run(dev_env, write=False) == ("failed", ["first", "second", "third"])
