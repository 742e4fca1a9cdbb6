"""The baseline of a specialist task's throughput: a bare Temporal workflow that runs one
activity calling the same compute backend (no planning, no events, no Ledger); and the
same with its start and end written to the Charter and the Ledger through Boomerang's
writer (`EventLog`, a `record_events` local activity), the floor those writes set.

In a module of its own with light imports: the workflow sandbox re-imports the module
that defines a workflow for each run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict

    from activities.compute import ComputeBackend
    from boomerang.models.events import EventKind
    from workflows.recording import EventLog


class BareCallInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    function: str
    request: dict[str, Any]
    timeout_s: float


class BareCall:
    def __init__(self, backend: ComputeBackend) -> None:
        self._backend = backend

    @activity.defn(name="bare_call")
    async def call(self, inp: BareCallInput) -> dict[str, Any]:
        return await self._backend.call(inp.function, dict(inp.request), timeout_s=inp.timeout_s)


@workflow.defn(name="BareTask")
class BareTask:
    @workflow.run
    async def run(self, inp: BareCallInput) -> dict[str, Any]:
        return await workflow.execute_activity_method(
            BareCall.call, inp, start_to_close_timeout=timedelta(seconds=inp.timeout_s + 60)
        )


@workflow.defn(name="BareLedgerTask")
class BareLedgerTask:
    @workflow.run
    async def run(self, inp: BareCallInput) -> dict[str, Any]:
        log = EventLog(run_id=workflow.info().workflow_id, tenant="bench-bare")
        writer = log.start()
        log.emit(EventKind.TASK_STARTED, task_type="bench", message="started")
        result: dict[str, Any] = await workflow.execute_activity_method(
            BareCall.call, inp, start_to_close_timeout=timedelta(seconds=inp.timeout_s + 60)
        )
        log.emit(EventKind.TASK_COMPLETED, task_type="bench", message="completed")
        await log.flush()
        writer.cancel()
        return result
