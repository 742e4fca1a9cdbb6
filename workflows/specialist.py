"""The steps of one specialist task, shared by `BoomerAngTask` and the phases that run one inline.

Plan (a local activity: which Boomer_Ang, which function, the estimate), then the
dispatch to its compute function with every attempt costed in the Ledger. The events
around them (started, completed, failed) carry the same fields wherever the task
runs, and the workflow that runs it takes its compute callbacks. Workflow code only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import JsonValue

    from activities.dispatch import DispatchActivities
    from activities.tasks import TaskActivities
    from boomerang.constants import CALLBACK_SIGNAL, CALLBACKS_QUERY
    from boomerang.models.events import RunEvent
    from boomerang.models.tasks import (
        Attribution,
        DispatchInput,
        DispatchOutcome,
        PlanTaskInput,
        TaskInput,
        TaskPlan,
    )
    from boomerang.models.webhooks import CallbackRecord
    from modal_app.contracts import TaskRequest


class TakesComputeCallbacks:
    """A workflow that runs specialist tasks keeps their verified compute callbacks
    (`POST /webhooks/modal/task-complete`), once per webhook id; the results still come
    from dispatch, so a lost callback loses nothing. Set `_callbacks = {}` in `__init__`."""

    _callbacks: dict[str, CallbackRecord]

    @workflow.signal(name=CALLBACK_SIGNAL)
    def compute_callback(self, record: CallbackRecord) -> None:
        self._callbacks.setdefault(record.webhook_id, record)

    @workflow.query(name=CALLBACKS_QUERY)
    def callbacks(self) -> list[CallbackRecord]:
        return list(self._callbacks.values())


def plan_input(inp: TaskInput) -> PlanTaskInput:
    return PlanTaskInput(
        task_type=inp.task_type, boomer_ang_id=inp.boomer_ang_id, expected_seconds=inp.expected_seconds
    )


async def plan_locally(inp: TaskInput) -> TaskPlan:
    """Planning is a registry lookup: a local activity in the workflow task that needs it."""
    return await workflow.execute_local_activity_method(
        TaskActivities.plan_task, plan_input(inp), start_to_close_timeout=timedelta(seconds=30)
    )


def event_fields(inp: TaskInput, plan: TaskPlan) -> dict[str, Any]:
    """What every event of the task says about it."""
    return {"phase": inp.phase, "boomer_ang_id": plan.boomer_ang_id, "task_type": plan.task_type}


async def dispatch(
    inp: TaskInput, plan: TaskPlan, *, task_id: str, run_id: str, events: tuple[RunEvent, ...] = ()
) -> DispatchOutcome:
    """Run the task on its compute function; each attempt's cost lands on `run_id`, after
    `events` (the run's steps so far, `EventLog.carried_by`)."""
    request = TaskRequest(
        run_id=run_id,
        task_id=task_id,
        boomer_ang_id=plan.boomer_ang_id,
        task_type=plan.task_type,
        payload=inp.payload,
    )
    return await workflow.execute_activity_method(
        DispatchActivities.dispatch,
        DispatchInput(
            function=plan.function,
            payload=request.model_dump(mode="json"),
            timeout_s=plan.timeout_s,
            heartbeat_every_s=inp.heartbeat_timeout.total_seconds() / 3,
            attribution=Attribution(
                run_id=run_id,
                tenant=inp.tenant,
                project_id=inp.project_id,
                phase=inp.phase,
                boomer_ang_id=plan.boomer_ang_id,
                task_type=plan.task_type,
            ),
            events=events,
        ),
        start_to_close_timeout=timedelta(seconds=plan.timeout_s + 60),
        heartbeat_timeout=inp.heartbeat_timeout,
        retry_policy=RetryPolicy(maximum_attempts=inp.max_attempts),
    )


def completed_details(outcome: DispatchOutcome) -> dict[str, JsonValue]:
    # The attempt rows carry the money; the completed row says which attempt counted.
    result = outcome.result
    return {"attempt": outcome.attempt, "summary": result.summary, "warnings": list(result.warnings)}
