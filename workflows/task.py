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

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.dispatch import DispatchActivities
    from activities.tasks import TaskActivities
    from boomerang.constants import TASK_WORKFLOW
    from boomerang.models.events import EventKind, RunEvent
    from boomerang.models.tasks import (
        Attribution,
        DispatchInput,
        DispatchOutcome,
        PlanTaskInput,
        TaskInput,
        TaskOutcome,
        TaskPlan,
    )
    from boomerang.webhooks.models import CallbackRecord
    from modal_app.contracts import TaskRequest
    from workflows.recording import EventLog
    from workflows.webhooks import send_webhook

TASK_FAILED = "TaskFailed"
OVER_BUDGET = "OverBudget"


@workflow.defn(name=TASK_WORKFLOW)
class BoomerAngTask:
    @workflow.init
    def __init__(self, inp: TaskInput) -> None:
        self._task_id = workflow.info().workflow_id
        self._events = EventLog(
            run_id=inp.run_id or self._task_id, tenant=inp.tenant, project_id=inp.project_id
        )
        self._webhook_url = None if inp.webhook_url is None else str(inp.webhook_url)
        self._callbacks: dict[str, CallbackRecord] = {}

    @workflow.run
    async def run(self, inp: TaskInput) -> TaskOutcome:
        writer = self._events.start()
        try:
            return await self._run(inp)
        finally:
            writer.cancel()

    async def _run(self, inp: TaskInput) -> TaskOutcome:
        plan = await self._plan(inp)
        fields = {"phase": inp.phase, "boomer_ang_id": plan.boomer_ang_id, "task_type": plan.task_type}
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
            await self._notify(budget)
            await self._events.flush()
            raise ApplicationError(reason, type=OVER_BUDGET, non_retryable=True)

        self._events.emit(EventKind.TASK_STARTED, **fields, message=f"{plan.boomer_ang_id} started")
        request = TaskRequest(
            run_id=self._events.run_id,
            task_id=self._task_id,
            boomer_ang_id=plan.boomer_ang_id,
            task_type=plan.task_type,
            payload=inp.payload,
        )
        try:
            outcome = await self._dispatch(inp, plan, request)
        except ActivityError as exc:
            error = str(exc.cause or exc)
            failed = self._events.emit(
                EventKind.TASK_FAILED,
                status="failed",
                **fields,
                message=f"{plan.boomer_ang_id} could not complete the task",
                details={"error": error, "error_type": type(exc.cause).__name__},
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
            # The attempt rows carry the money; this row says which attempt counted.
            details={
                "attempt": outcome.attempt,
                "summary": result.summary,
                "warnings": list(result.warnings),
            },
        )
        await self._notify(completed)
        await self._events.flush()
        return TaskOutcome(
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

    # -- compute callbacks and webhooks ---------------------------------------------

    @workflow.signal(name="compute_callback")
    def compute_callback(self, record: CallbackRecord) -> None:
        """A verified completion report; the same webhook id twice is kept once."""
        self._callbacks.setdefault(record.webhook_id, record)

    @workflow.query(name="callbacks")
    def callbacks(self) -> list[CallbackRecord]:
        return list(self._callbacks.values())

    async def _notify(self, event: RunEvent) -> None:
        """Start the signed notification of `event` when the task has a webhook URL."""
        if self._webhook_url is not None:
            await send_webhook(event, url=self._webhook_url)

    async def _plan(self, inp: TaskInput) -> TaskPlan:
        try:
            return await workflow.execute_activity_method(
                TaskActivities.plan_task,
                PlanTaskInput(
                    task_type=inp.task_type,
                    boomer_ang_id=inp.boomer_ang_id,
                    expected_seconds=inp.expected_seconds,
                ),
                start_to_close_timeout=timedelta(seconds=30),
            )
        except ActivityError as exc:
            error = str(exc.cause or exc)
            failed = self._events.emit(
                EventKind.TASK_FAILED,
                status="failed",
                phase=inp.phase,
                task_type=inp.task_type,
                message="The task could not be started",
                details={"error": error},
            )
            await self._notify(failed)
            await self._events.flush()
            raise ApplicationError(error, type=TASK_FAILED, non_retryable=True) from exc

    async def _dispatch(self, inp: TaskInput, plan: TaskPlan, request: TaskRequest) -> DispatchOutcome:
        return await workflow.execute_activity_method(
            DispatchActivities.dispatch,
            DispatchInput(
                function=plan.function,
                payload=request.model_dump(mode="json"),
                timeout_s=plan.timeout_s,
                heartbeat_every_s=inp.heartbeat_timeout.total_seconds() / 3,
                attribution=Attribution(
                    run_id=self._events.run_id,
                    tenant=inp.tenant,
                    project_id=inp.project_id,
                    phase=inp.phase,
                    boomer_ang_id=plan.boomer_ang_id,
                    task_type=plan.task_type,
                ),
            ),
            start_to_close_timeout=timedelta(seconds=plan.timeout_s + 60),
            heartbeat_timeout=inp.heartbeat_timeout,
            retry_policy=RetryPolicy(maximum_attempts=inp.max_attempts),
        )
