"""`ValidationPipeline`: phases run on compute, checkpoints wait for people.

The run carries out what its `PipelineMachine` (workflows/machine.py) says, one
typed command at a time: run a phase, open a checkpoint, finish. Checkpoints wait
durably (workflows/checkpoints.py); decisions and cancels come in through the
handlers of `RunIntake` (workflows/intake.py) and land in the `ApprovalBook`
(workflows/approvals.py). Every step is a `RunEvent` with a deterministic key,
written to the Charter and the Ledger beside the run (workflows/reporting.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import assert_never

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from pydantic import JsonValue

    from activities.budget import BudgetActivities
    from activities.dispatch import DispatchActivities
    from boomerang.constants import PIPELINE_WORKFLOW, STATUS_QUERY
    from boomerang.models.budget import BudgetCheckInput
    from boomerang.models.decisions import PipelineResult, PipelineStatus, RunStatus
    from boomerang.models.events import EventKind, RunEvent
    from boomerang.models.pipeline import PhaseTask, PipelineInput, budget_checkpoint
    from boomerang.models.tasks import (
        Attribution,
        DispatchInput,
        DispatchOutcome,
        TaskInput,
        TaskPlan,
        phase_task_id,
    )
    from boomerang.models.webhooks import CallbackRecord
    from modal_app.contracts import PhaseRequest
    from workflows import specialist
    from workflows.approvals import ApprovalBook
    from workflows.cancellation import Cancellation
    from workflows.checkpoint_context import budget_checkpoint_context, phase_checkpoint_context
    from workflows.checkpoints import await_checkpoint
    from workflows.intake import FINAL, RunIntake
    from workflows.legacy_spec import SPEC_OF_RUNS_WITHOUT_ONE
    from workflows.machine import Finish, OpenCheckpoint, OverBudget, PipelineMachine, RunPhase
    from workflows.recording import EventLog
    from workflows.reporting import FINISHED, RunReporter
    from workflows.task import TASK_FAILED, BoomerAngTask

PHASE_FAILED = "PhaseFailed"
# Runs since: a phase's specialist tasks run inside the run (a local activity to plan,
# the dispatch activity) instead of as child `BoomerAngTask`s, which cost a run about
# 0.2 s and four workflow tasks each (bench/README.md). Earlier runs replay with children.
TASKS_INLINE = "phase-tasks-inline"


class _Stop(Exception):
    """The run ends where it is (the budget checkpoint was rejected or expired)."""

    def __init__(self, finish: Finish) -> None:
        super().__init__(finish.reason)
        self.finish = finish


@workflow.defn(name=PIPELINE_WORKFLOW)
class ValidationPipeline(RunIntake, specialist.TakesComputeCallbacks):
    @workflow.init
    def __init__(self, inp: PipelineInput) -> None:
        self._inp = inp
        # Front doors always send the spec; only runs started before they did lack one.
        self._spec = inp.spec or SPEC_OF_RUNS_WITHOUT_ONE
        self._machine = PipelineMachine(self._spec, budget=inp.budget_usd)
        floating = (budget_checkpoint(),) if inp.budget_usd is not None else ()
        self._book = ApprovalBook(self._spec, inp.roster, floating=floating, rules=self._machine)
        run_id = workflow.info().workflow_id
        events = EventLog(run_id=run_id, tenant=inp.tenant, project_id=inp.project_id)
        self._report = RunReporter(inp, events=events, book=self._book, machine=self._machine)
        self._cancellation = Cancellation(run_id)
        self._outputs: dict[str, JsonValue] = {}
        self._children = 0  # specialist tasks started so far: they number the task ids
        # The specialist task running inside the run now, and its plan once made.
        self._task: tuple[TaskInput, TaskPlan | None] | None = None
        # Compute callbacks of its tasks (`POST /webhooks/modal/task-complete`), once per webhook id.
        self._callbacks: dict[str, CallbackRecord] = {}
        self._end_reason = ""

    @workflow.run
    async def run(self, inp: PipelineInput) -> PipelineResult:
        writer = self._report.events.start()
        self._cancellation.attach()
        try:
            try:
                return await self._execute()
            except _Stop as stop:
                return await self._finish(stop.finish.status, stop.finish.reason)
        except (asyncio.CancelledError, ActivityError, ChildWorkflowError) as exc:
            if not is_cancelled_exception(exc):
                raise
            return await self._cancelled()
        finally:
            writer.cancel()

    async def _execute(self) -> PipelineResult:
        """Carry out the machine's commands until it says the run is over."""
        self._report.emit(EventKind.PIPELINE_STARTED, message=f"Validation of {self._inp.project_id} started")
        command = self._machine.start()
        while True:
            match command:
                case RunPhase():
                    await self._run_phase(command)
                    command = self._machine.phase_done()
                case OpenCheckpoint(index=index, checkpoint=cp):
                    phase = self._spec.phases[index].name
                    context = phase_checkpoint_context(self._machine, cp, self._outputs.get(phase))
                    record = await await_checkpoint(
                        cp, context, book=self._book, report=self._report, phase=phase
                    )
                    command = self._machine.decided(cp, record)
                case Finish(status=status, reason=reason):
                    return await self._finish(status, reason)
                case _:
                    assert_never(command)

    # -- phases ------------------------------------------------------------------------

    async def _run_phase(self, command: RunPhase) -> None:
        phase = command.phase
        self._book.enter_phase(command.index)
        self._report.publish(RunStatus.RUNNING)
        await self._within_budget(
            f"phase {phase.name}", function=phase.function, seconds=phase.expected_seconds
        )
        self._report.emit(EventKind.PHASE_STARTED, phase=phase.name, message=f"{phase.title} started")
        self._report.flush()  # a budget decision above left its `running` for now
        request = PhaseRequest(
            run_id=workflow.info().workflow_id,
            phase=phase.name,
            brief=self._inp.brief,
            iteration=command.iteration,
            feedback=command.feedback,
            hypothesis=command.hypothesis,
            previous=dict(self._outputs),
            context=self._inp.context,
        )
        attribution = Attribution(
            run_id=self._report.events.run_id, tenant=self._inp.tenant, project_id=self._inp.project_id,
            phase=phase.name,
        )  # fmt: skip

        def dispatch(events: tuple[RunEvent, ...]) -> Awaitable[DispatchOutcome]:
            return workflow.execute_activity_method(
                DispatchActivities.dispatch,
                DispatchInput(
                    function=phase.function,
                    payload=request.model_dump(mode="json"),
                    timeout_s=phase.timeout.total_seconds(),
                    # The one cadence every backend heartbeats at: a third of the timeout.
                    heartbeat_every_s=phase.heartbeat_timeout.total_seconds() / 3,
                    attribution=attribution,
                    events=events,
                ),
                start_to_close_timeout=phase.timeout + timedelta(minutes=1),
                heartbeat_timeout=phase.heartbeat_timeout,
                retry_policy=RetryPolicy(maximum_attempts=phase.max_attempts),
            )

        try:
            outcome = await self._report.events.carried_by(dispatch)
            specialists = {t.task_type: await self._run_task(t, command) for t in phase.tasks}
        except (ActivityError, ChildWorkflowError, ApplicationError) as exc:
            if is_cancelled_exception(exc):
                raise  # the run is being cancelled: not a failure of the phase
            if isinstance(exc, ApplicationError) and exc.type != TASK_FAILED:
                raise  # only a task run inside the run fails the phase this way
            cause = exc if isinstance(exc, ApplicationError) else exc.cause
            detail = str(cause) if cause is not None else str(exc)
            self._report.emit(
                EventKind.PHASE_FAILED, status="failed", phase=phase.name,
                message=f"{phase.title} could not be completed",
                details={"error": detail, "error_type": type(cause).__name__},
            )  # fmt: skip
            await self._finish(RunStatus.FAILED, f"phase {phase.name} failed")
            raise ApplicationError(
                f"phase {phase.name} failed: {detail}", type=PHASE_FAILED, non_retryable=True
            ) from exc
        result = outcome.result
        self._outputs[phase.name] = (
            {**result.output, "specialists": specialists} if specialists else result.output
        )
        self._report.emit(
            EventKind.PHASE_COMPLETED, phase=phase.name, execution_time_s=result.execution_time_s,
            message=f"{phase.title} completed",
            details={"iteration": command.iteration, "gpu_type": result.gpu_type},
        )  # fmt: skip

    async def _run_task(self, task: PhaseTask, command: RunPhase) -> JsonValue:
        """One specialist task of a phase, inside the run (a child `BoomerAngTask` in runs
        started before `TASKS_INLINE`); its events and costs are the run's either way."""
        phase = command.phase
        await self._within_budget(f"{task.task_type} in {phase.name}", task_type=task.task_type,
                                  seconds=task.expected_seconds)  # fmt: skip
        payload = dict(task.payload)
        if task.brief_field:
            brief = self._inp.brief
            text = brief if command.hypothesis is None else f"{command.hypothesis}\n\n{brief}"
            payload[task.brief_field] = text[: task.brief_chars]
        self._children += 1
        self._report.flush()
        run_id = self._report.events.run_id
        task_id = phase_task_id(run_id, self._children, task.task_type)
        inp = TaskInput(
            tenant=self._inp.tenant, task_type=task.task_type, payload=payload, run_id=run_id,
            project_id=self._inp.project_id, phase=phase.name, expected_seconds=task.expected_seconds,
            webhook_url=self._inp.webhook_url,
        )  # fmt: skip
        if workflow.patched(TASKS_INLINE):
            return await self._run_task_inline(inp, task_id)
        outcome = await workflow.execute_child_workflow(BoomerAngTask.run, inp, id=task_id)
        if outcome.status == "cancelled":
            # The child took the cancel and ended cleanly; the run stops here too.
            raise asyncio.CancelledError(f"task {outcome.task_id} was cancelled")
        return outcome.output

    async def _run_task_inline(self, inp: TaskInput, task_id: str) -> JsonValue:
        """Plan, started, dispatch, completed: the steps of `BoomerAngTask`, with its events.

        A failure is the task's (`task_failed`, then the phase fails as with a child); a
        cancel of the run is recorded as the task's too (`_cancelled`)."""
        self._task = (inp, None)
        events = self._report.events
        try:
            plan = await specialist.plan_locally(inp)
            self._task = (inp, plan)
            fields = specialist.event_fields(inp, plan)
            events.emit(EventKind.TASK_STARTED, **fields, message=f"{plan.boomer_ang_id} started")

            def dispatch(handed: tuple[RunEvent, ...]) -> Awaitable[DispatchOutcome]:
                return specialist.dispatch(inp, plan, task_id=task_id, run_id=events.run_id, events=handed)

            outcome = await events.carried_by(dispatch)
        except (ActivityError, ApplicationError) as exc:
            # A local activity's failure comes as the activity's own error, not wrapped.
            if is_cancelled_exception(exc):
                raise
            error = str(exc.cause or exc) if isinstance(exc, ActivityError) else str(exc)
            planned = self._task[1]
            failed = events.emit(
                EventKind.TASK_FAILED, status="failed", phase=inp.phase, task_type=inp.task_type,
                boomer_ang_id=planned.boomer_ang_id if planned else None,
                message=f"{planned.boomer_ang_id} could not complete the task" if planned
                else "The task could not be started",
                details={"error": error, "error_type": type(exc.cause or exc).__name__},
            )  # fmt: skip
            self._task = None
            await self._report.notify(failed)
            raise ApplicationError(
                f"task {task_id} failed: {error}", type=TASK_FAILED, non_retryable=True
            ) from exc
        self._task = None
        completed = events.emit(
            EventKind.TASK_COMPLETED, **fields, execution_time_s=outcome.result.execution_time_s,
            message=f"{plan.boomer_ang_id} completed the task", details=specialist.completed_details(outcome),
        )  # fmt: skip
        await self._report.notify(completed)
        return outcome.result.output

    async def _within_budget(
        self, what: str, *, seconds: float, function: str | None = None, task_type: str | None = None
    ) -> None:
        """Before paid work: if it would cross the budget, wait for a person to raise it."""
        while self._machine.budget is not None:
            check = await workflow.execute_activity_method(
                BudgetActivities.check_budget,
                BudgetCheckInput(
                    run_id=self._report.events.run_id, function=function, task_type=task_type,
                    expected_seconds=seconds,
                ),
                start_to_close_timeout=timedelta(seconds=30),
            )  # fmt: skip
            over = self._machine.before_paid_work(spent=check.spent_usd, estimate=check.estimate_usd)
            if not isinstance(over, OverBudget):
                return
            cp = budget_checkpoint()
            context = budget_checkpoint_context(
                cp, next_step=what, spent=over.spent, estimate=over.estimate, budget=over.budget
            )
            reached = self._report.emit(
                EventKind.BUDGET_REACHED, status="waiting", message="The run reached its budget",
                details=context.as_json(),
            )  # fmt: skip
            await self._report.notify(reached)
            phase = self._machine.phase
            record = await await_checkpoint(
                cp, context, book=self._book, report=self._report, phase=phase.name if phase else None
            )
            decided = self._machine.budget_decided(over, record, cp.name)
            if isinstance(decided, Finish):
                raise _Stop(decided)

    # -- the end -----------------------------------------------------------------------

    async def _cancelled(self) -> PipelineResult:
        """The main flow was cancelled (by the `cancel` update or by Temporal): end cleanly."""
        if self._report.status in FINAL:  # a Temporal cancel that came while the run was ending anyway
            self._cancellation.taken()
            await self._report.events.flush()
            if self._report.status is RunStatus.FAILED:
                raise ApplicationError(self._end_reason, type=PHASE_FAILED, non_retryable=True)
            return self._result(self._report.status, self._end_reason)
        details = self._cancellation.ledger_details()
        record = self._cancellation.taken()
        if self._task is not None:  # a specialist task was running inside the run
            inp, plan = self._task
            who = plan.boomer_ang_id if plan else inp.boomer_ang_id
            cancelled = self._report.emit(
                EventKind.TASK_CANCELLED, status="cancelled", phase=inp.phase, boomer_ang_id=who,
                task_type=plan.task_type if plan else inp.task_type,
                message=f"{who or 'The task'} was cancelled", approver=record.by, details=details,
            )  # fmt: skip
            self._task = None
            await self._report.notify(cancelled)
        for name in self._book.cancel_open():
            self._report.emit(
                EventKind.CHECKPOINT_CANCELLED, status="cancelled", checkpoint=name,
                message=f"{self._book.title(name)}: closed, the run was cancelled", details=details,
            )  # fmt: skip
        return await self._finish(
            RunStatus.CANCELLED, self._cancellation.reason(), approver=record.by, details=details
        )

    async def _finish(self, status: RunStatus, reason: str, **fields: object) -> PipelineResult:
        message = f"Validation {status.value}"
        finished = self._report.emit(FINISHED[status], status=status.value, message=message, **fields)
        self._end_reason = reason
        self._report.publish(status)
        # Decisions waiting for a checkpoint that will not open now answer before the run ends.
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._report.notify(finished)
        await self._report.events.flush()
        return self._result(status, reason)

    def _result(self, status: RunStatus, reason: str) -> PipelineResult:
        return PipelineResult(
            status=status,
            outputs=dict(self._outputs),
            decisions=tuple(self._book.decisions),
            reason=reason,
            cancellation=self._cancellation.record if status is RunStatus.CANCELLED else None,
        )

    # -- what it shows -----------------------------------------------------------------

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> PipelineStatus:
        phase = self._machine.phase
        return PipelineStatus(
            run_id=workflow.info().workflow_id,
            tenant=self._inp.tenant,
            project_id=self._inp.project_id,
            status=self._report.status,
            phase=phase.name if phase else None,
            phase_index=self._machine.index,
            pending=self._book.pending(),
            decisions=tuple(self._book.decisions),
            refused=tuple(self._book.refused),
            iterations=dict(self._machine.iterations),
            pivots=self._machine.pivots,
            outputs=dict(self._outputs),
            cancellation=self._cancellation.record,
        )
