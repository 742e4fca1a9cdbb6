"""`BoomerAngTask`: one specialist task, durable from dispatch to the record of what it cost.

Plan (which Boomer_Ang, which function, the estimate) -> task_started -> dispatch to
the specialist's compute function (every attempt costed in the Ledger) ->
task_completed, or task_failed with a customer-safe message in the Charter and the
error in the Ledger. Runs alone or as a child of a pipeline (sharing its run id,
so its events and costs land in that run's Charter and Ledger).

A compute function may also report back through the signed HTTP callback
(`POST /webhooks/modal/task-complete`), which arrives as the `compute_callback`
signal: kept once per webhook id and shown by the `callbacks` query. Dispatch
still polls its call: a lost callback never loses a result. With a webhook URL,
completion, failure and a budget stop are also sent to it (signed, retried).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.tasks import TaskActivities
    from boomerang.constants import CANCEL_UPDATE, TASK_WORKFLOW
    from boomerang.models.cancel import CancelReceipt
    from boomerang.models.events import EventKind, RunEvent
    from boomerang.models.tasks import DispatchOutcome, TaskInput, TaskOutcome, TaskPlan
    from boomerang.models.webhooks import CallbackRecord
    from workflows import specialist
    from workflows.cancellation import Cancellation
    from workflows.recording import EventLog
    from workflows.webhooks import send_webhook

TASK_FAILED = "TaskFailed"
# Planning is a registry lookup: a local activity in the first workflow task saves an
# activity round trip and a workflow task. Tasks started before this replay as before.
PLAN_LOCALLY = "plan-task-local"
OVER_BUDGET = "OverBudget"


@workflow.defn(name=TASK_WORKFLOW)
class BoomerAngTask(specialist.TakesComputeCallbacks):
    @workflow.init
    def __init__(self, inp: TaskInput) -> None:
        self._task_id = workflow.info().workflow_id
        self._events = EventLog(
            run_id=inp.run_id or self._task_id, tenant=inp.tenant, project_id=inp.project_id
        )
        self._webhook_url = None if inp.webhook_url is None else str(inp.webhook_url)
        self._callbacks: dict[str, CallbackRecord] = {}
        self._cancellation = Cancellation(self._task_id)
        self._state: Literal["running", "completed", "failed", "cancelled"] = "running"
        self._planned: TaskPlan | None = None
        # How the task ended, kept so that a Temporal cancel arriving as it ends changes nothing.
        self._ending: TaskOutcome | ApplicationError | None = None

    @workflow.run
    async def run(self, inp: TaskInput) -> TaskOutcome:
        writer = self._events.start()
        self._cancellation.attach()
        try:
            return await self._run(inp)
        except (asyncio.CancelledError, ActivityError) as exc:
            if not is_cancelled_exception(exc):
                raise
            return await self._cancelled(inp)
        finally:
            writer.cancel()

    # -- cancel (workflows/cancellation.py says why an update) -------------------------

    @workflow.update(name=CANCEL_UPDATE)
    async def cancel(self, payload: Any) -> CancelReceipt:
        inp = self._cancellation.validate(payload, ended=self._ended())
        if not self._cancellation.request(inp):
            return self._cancellation.receipt("duplicate")
        await workflow.wait_condition(lambda: self._state != "running")
        if self._state != "cancelled":  # it finished otherwise in the same instant
            self._cancellation.validate(payload, ended=self._state)
        return self._cancellation.receipt("applied")

    @cancel.validator
    def _validate_cancel(self, payload: Any) -> None:
        self._cancellation.validate(payload, ended=self._ended())

    def _ended(self) -> str | None:
        return None if self._state in ("running", "cancelled") else self._state

    def _end(self, ending: TaskOutcome | ApplicationError) -> None:
        self._ending = ending
        self._state = ending.status if isinstance(ending, TaskOutcome) else "failed"

    async def _cancelled(self, inp: TaskInput) -> TaskOutcome:
        """The task was cancelled (by the `cancel` update, by Temporal, or with its pipeline)."""
        if self._ending is not None:  # a Temporal cancel that came while it was ending anyway
            self._cancellation.taken()
            await self._events.flush()
            if isinstance(self._ending, ApplicationError):
                raise self._ending
            return self._ending
        plan = self._planned
        who = plan.boomer_ang_id if plan else inp.boomer_ang_id
        details = self._cancellation.ledger_details()
        record = self._cancellation.taken()
        self._state = "cancelled"
        cancelled = self._events.emit(
            EventKind.TASK_CANCELLED,
            status="cancelled",
            phase=inp.phase,
            boomer_ang_id=who,
            task_type=plan.task_type if plan else inp.task_type,
            message=f"{who or 'The task'} was cancelled",
            approver=record.by,
            details=details,
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._notify(cancelled)
        await self._events.flush()
        return TaskOutcome(
            task_id=self._task_id,
            run_id=self._events.run_id,
            boomer_ang_id=who or "",
            task_type=plan.task_type if plan else inp.task_type,
            status="cancelled",
            cancellation=record,
        )

    async def _run(self, inp: TaskInput) -> TaskOutcome:
        plan = await self._plan(inp)
        fields = specialist.event_fields(inp, plan)
        if inp.max_cost_usd is not None and plan.estimate.total_cost > inp.max_cost_usd:
            reason = f"estimated cost ${plan.estimate.total_cost} exceeds max_cost_usd ${inp.max_cost_usd}"
            budget = self._events.emit(
                EventKind.BUDGET_REACHED,
                status="stopped",
                **fields,
                message="The task was not started: it would exceed its budget",
                cost=plan.estimate,
                details={"reason": reason},
            )
            self._end(ApplicationError(reason, type=OVER_BUDGET, non_retryable=True))
            await self._notify(budget)
            await self._events.flush()
            raise ApplicationError(reason, type=OVER_BUDGET, non_retryable=True)

        self._events.emit(EventKind.TASK_STARTED, **fields, message=f"{plan.boomer_ang_id} started")

        def dispatch(handed: tuple[RunEvent, ...]) -> Awaitable[DispatchOutcome]:
            run_id = self._events.run_id
            return specialist.dispatch(inp, plan, task_id=self._task_id, run_id=run_id, events=handed)

        try:
            outcome = await self._events.carried_by(dispatch)
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                raise  # the task is being cancelled: not a failure
            error = str(exc.cause or exc)
            failed = self._events.emit(
                EventKind.TASK_FAILED,
                status="failed",
                **fields,
                message=f"{plan.boomer_ang_id} could not complete the task",
                details={"error": error, "error_type": type(exc.cause).__name__},
            )
            self._end(
                ApplicationError(
                    f"task {self._task_id} failed: {error}", type=TASK_FAILED, non_retryable=True
                )
            )
            await self._notify(failed)
            await self._events.flush()
            raise ApplicationError(
                f"task {self._task_id} failed: {error}", type=TASK_FAILED, non_retryable=True
            ) from exc

        result = outcome.result
        completed = self._events.emit(
            EventKind.TASK_COMPLETED,
            **fields,
            execution_time_s=result.execution_time_s,
            message=f"{plan.boomer_ang_id} completed the task",
            details=specialist.completed_details(outcome),
        )
        done = TaskOutcome(
            task_id=self._task_id,
            run_id=self._events.run_id,
            boomer_ang_id=plan.boomer_ang_id,
            task_type=plan.task_type,
            status="completed",
            output=result.output,
            summary=result.summary,
            execution_time_s=result.execution_time_s,
            cost_usd=outcome.cost.total_cost,
        )
        self._end(done)
        await self._notify(completed)
        await self._events.flush()
        return done

    # -- webhooks ----------------------------------------------------------------------

    async def _notify(self, event: RunEvent) -> None:
        """Start the signed notification of `event` when the task has a webhook URL."""
        if self._webhook_url is not None:
            await send_webhook(event, url=self._webhook_url)

    async def _plan(self, inp: TaskInput) -> TaskPlan:
        try:
            if workflow.patched(PLAN_LOCALLY):
                self._planned = await specialist.plan_locally(inp)
            else:
                self._planned = await workflow.execute_activity_method(
                    TaskActivities.plan_task,
                    specialist.plan_input(inp),
                    start_to_close_timeout=timedelta(seconds=30),
                )
            return self._planned
        except (ActivityError, ApplicationError) as exc:
            # A local activity's failure comes as the activity's own error, not wrapped.
            if is_cancelled_exception(exc):
                raise
            error = str(exc.cause or exc) if isinstance(exc, ActivityError) else str(exc)
            failed = self._events.emit(
                EventKind.TASK_FAILED,
                status="failed",
                phase=inp.phase,
                task_type=inp.task_type,
                message="The task could not be started",
                details={"error": error},
            )
            self._end(ApplicationError(error, type=TASK_FAILED, non_retryable=True))
            await self._notify(failed)
            await self._events.flush()
            raise ApplicationError(error, type=TASK_FAILED, non_retryable=True) from exc
