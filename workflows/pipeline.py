"""`ValidationPipeline`: phases run on compute, checkpoints wait for people.

A checkpoint waits on a durable condition with a timeout (no compute while it
waits); decisions arrive by update, signal, client or HTTP and all land through
`ApprovalBook.submit`. Every step becomes a `RunEvent` with a deterministic key,
written to the Charter and the Ledger by an activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from pydantic import JsonValue, ValidationError

    from activities.budget import BudgetActivities, BudgetCheckInput
    from activities.dispatch import DispatchActivities
    from boomerang.constants import (
        CANCEL_UPDATE,
        DECIDE_UPDATE,
        DECISION_SIGNALS,
        PIPELINE_WORKFLOW,
        SA_AWAITING,
        SA_PHASE,
        SA_STATUS,
        SA_TENANT,
    )
    from boomerang.models.cancel import CancelReceipt
    from boomerang.models.decisions import (
        CheckpointContext,
        DecisionInput,
        DecisionReceipt,
        DecisionRecord,
        PipelineResult,
        PipelineStatus,
        RunStatus,
    )
    from boomerang.models.events import EventKind, RunEvent
    from boomerang.models.pipeline import (
        CheckpointSpec,
        Decision,
        ExpiryPolicy,
        PhaseSpec,
        PhaseTask,
        PipelineInput,
        budget_checkpoint,
    )
    from boomerang.models.tasks import Attribution, DispatchInput, TaskInput
    from modal_app.contracts import PhaseRequest
    from workflows.approvals import ApprovalBook, InvalidDecisionError
    from workflows.cancellation import Cancellation
    from workflows.checkpoint_context import budget_checkpoint_context, phase_checkpoint_context
    from workflows.legacy_spec import SPEC_OF_RUNS_WITHOUT_ONE
    from workflows.recording import EventLog
    from workflows.task import BoomerAngTask
    from workflows.webhooks import checkpoint_data, send_webhook

INVALID_DECISION = "InvalidDecision"
UNKNOWN_UPDATE = "UnknownUpdate"
PHASE_FAILED = "PhaseFailed"
_CONTINUE = (Decision.APPROVE, Decision.OVERRIDE_PROCEED)
_FINAL = frozenset(
    {RunStatus.COMPLETED, RunStatus.REJECTED, RunStatus.EXPIRED, RunStatus.FAILED, RunStatus.CANCELLED}
)
_UPDATES = (DECIDE_UPDATE, CANCEL_UPDATE)


class _Stop(Exception):
    """The run ends here (budget increase rejected or expired), with this status."""

    def __init__(self, status: RunStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@workflow.defn(name=PIPELINE_WORKFLOW)
class ValidationPipeline:
    @workflow.init
    def __init__(self, inp: PipelineInput) -> None:
        self._inp = inp
        # Front doors always send the spec; only runs started before they did lack one.
        self._spec = inp.spec or SPEC_OF_RUNS_WITHOUT_ONE
        self._budget = inp.budget_usd
        floating = (budget_checkpoint(),) if inp.budget_usd is not None else ()
        self._book = ApprovalBook(self._spec, inp.roster, floating=floating)
        self._children = 0
        self._status = RunStatus.RUNNING
        self._phase_index: int | None = None
        self._outputs: dict[str, JsonValue] = {}
        self._events = EventLog(
            run_id=workflow.info().workflow_id, tenant=inp.tenant, project_id=inp.project_id
        )
        self._cancellation = Cancellation(workflow.info().workflow_id)
        self._end_reason = ""

    @workflow.run
    async def run(self, inp: PipelineInput) -> PipelineResult:
        writer = self._events.start()
        self._cancellation.attach()
        try:
            try:
                return await self._run_phases(inp)
            except _Stop as stop:
                return await self._finish(stop.status, stop.reason)
        except (asyncio.CancelledError, ActivityError, ChildWorkflowError) as exc:
            if not is_cancelled_exception(exc):
                raise
            return await self._cancelled()
        finally:
            writer.cancel()

    async def _run_phases(self, inp: PipelineInput) -> PipelineResult:
        self._emit(EventKind.PIPELINE_STARTED, message=f"Validation of {inp.project_id} started")
        feedback: dict[str, list[str]] = {p.name: [] for p in self._spec.phases}
        hypothesis: str | None = None
        index = 0
        while index < len(self._spec.phases):
            phase = self._spec.phases[index]
            await self._run_phase(index, phase, feedback[phase.name], hypothesis)
            next_index = index + 1
            for cp in phase.checkpoints:
                record = await self._await_checkpoint(cp)
                if record is None:
                    return await self._finish(RunStatus.EXPIRED, f"{cp.name} expired with no decision")
                if record.decision in _CONTINUE:
                    continue
                if record.decision is Decision.REJECT:
                    return await self._finish(RunStatus.REJECTED, f"{cp.name} rejected by {record.approver}")
                if record.decision is Decision.ITERATE:
                    self._book.iterations[phase.name] += 1
                    feedback[phase.name].append(record.comment or f"iterate at {cp.name}")
                    next_index = index
                else:  # pivot
                    next_index = self._book.pivot_target(index, record.target_phase)
                    self._book.pivots += 1
                    hypothesis = record.comment or hypothesis
                self._book.reopen_from(next_index)
                break
            index = next_index
        return await self._finish(RunStatus.COMPLETED, "all phases approved")

    # -- phases ------------------------------------------------------------------

    async def _run_phase(
        self, index: int, phase: PhaseSpec, feedback: list[str], hypothesis: str | None
    ) -> None:
        self._phase_index = index
        self._book.enter_phase(index)
        self._publish(RunStatus.RUNNING)
        iteration = self._book.iterations[phase.name]
        await self._within_budget(
            f"phase {phase.name}", function=phase.function, seconds=phase.expected_seconds
        )
        self._emit(EventKind.PHASE_STARTED, phase=phase.name, message=f"{phase.title} started")
        request = PhaseRequest(
            run_id=workflow.info().workflow_id,
            phase=phase.name,
            brief=self._inp.brief,
            iteration=iteration,
            feedback=tuple(feedback),
            hypothesis=hypothesis,
            previous=dict(self._outputs),
            context=self._inp.context,
        )
        try:
            outcome = await workflow.execute_activity_method(
                DispatchActivities.dispatch,
                DispatchInput(
                    function=phase.function,
                    payload=request.model_dump(mode="json"),
                    timeout_s=phase.timeout.total_seconds(),
                    heartbeat_every_s=phase.heartbeat_timeout.total_seconds() / 3,
                    attribution=Attribution(
                        run_id=self._events.run_id,
                        tenant=self._inp.tenant,
                        project_id=self._inp.project_id,
                        phase=phase.name,
                    ),
                ),
                start_to_close_timeout=phase.timeout + timedelta(minutes=1),
                heartbeat_timeout=phase.heartbeat_timeout,
                retry_policy=RetryPolicy(maximum_attempts=phase.max_attempts),
            )
            specialists = {t.task_type: await self._run_task(phase, t, hypothesis) for t in phase.tasks}
        except (ActivityError, ChildWorkflowError) as exc:
            if is_cancelled_exception(exc):
                raise  # the run is being cancelled: not a failure of the phase
            cause = exc.cause
            detail = str(cause) if cause is not None else str(exc)
            self._emit(
                EventKind.PHASE_FAILED,
                status="failed",
                phase=phase.name,
                message=f"{phase.title} could not be completed",
                details={"error": detail, "error_type": type(cause).__name__},
            )
            await self._finish(RunStatus.FAILED, f"phase {phase.name} failed")
            raise ApplicationError(
                f"phase {phase.name} failed: {detail}", type=PHASE_FAILED, non_retryable=True
            ) from exc
        result = outcome.result
        self._outputs[phase.name] = (
            {**result.output, "specialists": specialists} if specialists else result.output
        )
        self._emit(
            EventKind.PHASE_COMPLETED,
            phase=phase.name,
            execution_time_s=result.execution_time_s,
            message=f"{phase.title} completed",
            details={"iteration": iteration, "gpu_type": result.gpu_type},
        )

    async def _run_task(self, phase: PhaseSpec, task: PhaseTask, hypothesis: str | None) -> JsonValue:
        """One specialist task of a phase, as a child `BoomerAngTask` sharing this run's logs."""
        await self._within_budget(f"{task.task_type} in {phase.name}", task_type=task.task_type,
                                  seconds=task.expected_seconds)  # fmt: skip
        payload = dict(task.payload)
        if task.brief_field:
            text = self._inp.brief if hypothesis is None else f"{hypothesis}\n\n{self._inp.brief}"
            payload[task.brief_field] = text[: task.brief_chars]
        self._children += 1
        outcome = await workflow.execute_child_workflow(
            BoomerAngTask.run,
            TaskInput(
                tenant=self._inp.tenant,
                task_type=task.task_type,
                payload=payload,
                run_id=self._events.run_id,
                project_id=self._inp.project_id,
                phase=phase.name,
                expected_seconds=task.expected_seconds,
                webhook_url=self._inp.webhook_url,
            ),
            id=f"{self._events.run_id}/task-{self._children:03d}-{task.task_type}",
        )
        if outcome.status == "cancelled":
            # The child took the cancel and ended cleanly; the run stops here too.
            raise asyncio.CancelledError(f"task {outcome.task_id} was cancelled")
        return outcome.output

    # -- budget --------------------------------------------------------------------

    async def _within_budget(
        self, what: str, *, seconds: float, function: str | None = None, task_type: str | None = None
    ) -> None:
        """Before paid work: if it would cross the budget, wait for a person to raise it."""
        while self._budget is not None:
            check = await workflow.execute_activity_method(
                BudgetActivities.check_budget,
                BudgetCheckInput(
                    run_id=self._events.run_id,
                    function=function,
                    task_type=task_type,
                    expected_seconds=seconds,
                ),
                start_to_close_timeout=timedelta(seconds=30),
            )
            needed = check.spent_usd + check.estimate_usd
            if needed <= self._budget:
                return
            cp = budget_checkpoint()
            context = budget_checkpoint_context(
                cp, next_step=what, spent=check.spent_usd, estimate=check.estimate_usd, budget=self._budget
            )
            reached = self._emit(EventKind.BUDGET_REACHED, status="waiting",
                                 message="The run reached its budget", details=context.as_json())  # fmt: skip
            await self._notify(reached)
            record = await self._await_checkpoint(cp, context=context)
            if record is None:
                raise _Stop(RunStatus.EXPIRED, f"{cp.name} expired with no decision")
            if record.decision is Decision.REJECT:
                raise _Stop(RunStatus.REJECTED, f"{cp.name} rejected by {record.approver}")
            self._budget = record.budget_usd or max(self._budget * 2, needed)

    # -- checkpoints -------------------------------------------------------------

    async def _await_checkpoint(
        self, cp: CheckpointSpec, *, context: CheckpointContext | None = None
    ) -> DecisionRecord | None:
        """Wait for a decision; None when the checkpoint expired and the run must stop."""
        now = workflow.now()
        deadline = now + cp.timeout
        phase = self._current_phase()
        context = context or self._phase_context(cp)
        refused = self._book.open(
            cp.name,
            now=now,
            deadline=deadline,
            phase=phase.name if phase else None,
            context=context.as_json(),
        )
        opening = self._book.opening(cp.name)
        if refused is not None:
            self._emit_refused(cp.name, refused.reason, via=refused.via)
        opened = self._emit(
            EventKind.CHECKPOINT_OPENED,
            checkpoint=cp.name,
            deadline=deadline,
            message=f"Awaiting a decision: {cp.title}",
            details={"opening": opening, **context.as_json()},
        )
        self._publish(RunStatus.AWAITING_APPROVAL)
        notice = checkpoint_data(cp, opening=opening, context=context.customer_safe())
        await self._notify(opened, notice)
        if cp.reminder_after is not None and not await self._wait_settled(cp.name, now + cp.reminder_after):
            self._book.remind(cp.name, workflow.now())
            reminded = self._emit(
                EventKind.CHECKPOINT_REMINDED,
                checkpoint=cp.name,
                deadline=deadline,
                message=f"Reminder: {cp.title} is waiting for a decision",
            )
            await self._notify(reminded, notice)
        if not await self._wait_settled(cp.name, deadline):
            self._book.expire(cp.name)
            expired = self._emit(
                EventKind.CHECKPOINT_EXPIRED,
                status="expired",
                checkpoint=cp.name,
                message=f"{cp.title} expired with no decision ({cp.on_expiry.value})",
            )
            self._publish(RunStatus.RUNNING)
            await self._notify(expired)
            if cp.on_expiry is ExpiryPolicy.PROCEED:
                return self._expired_proceed(cp)
            return None
        record = self._book.decision_for(cp.name)
        if record is None:  # settled and not expired means decided; never an input error
            raise ApplicationError(f"internal: {cp.name} settled without a decision", non_retryable=True)
        decided = self._emit(
            EventKind.CHECKPOINT_DECIDED,
            checkpoint=cp.name,
            decision=record.decision.value,
            message=f"{cp.title}: {record.decision.value}",
            approver=record.approver,
            details={
                "comment": record.comment,
                "decision_id": record.decision_id,
                "via": record.via,
                "opening": record.opening,
            },
        )
        self._publish(RunStatus.RUNNING)
        await self._notify(decided)
        return record

    def _expired_proceed(self, cp: CheckpointSpec) -> DecisionRecord:
        phase = self._spec.phases[self._phase_index or 0].name
        now = workflow.now()
        return DecisionRecord(
            decision_id=f"{cp.name}-expired",
            checkpoint=cp.name,
            phase=phase,
            decision=Decision.APPROVE,
            approver="system:expiry",
            received_at=now,
            applied_at=now,
            via="expiry",
        )

    async def _wait_settled(self, name: str, until: datetime) -> bool:
        """Wait until `name` is decided (True) or `until` passes (False)."""
        remaining = until - workflow.now()
        if remaining <= timedelta(0):
            return self._book.settled(name)
        try:
            await workflow.wait_condition(lambda: self._book.settled(name), timeout=remaining)
        except TimeoutError:
            return self._book.settled(name)
        return True

    # -- decisions: update, signals ----------------------------------------------

    @workflow.update(name=DECIDE_UPDATE)
    async def decide(self, payload: Any) -> DecisionReceipt:
        d = _parse_decision("update", DECIDE_UPDATE, payload, None)
        if self._book.opens_next(d):
            # The running phase opens this checkpoint when it is done. Its result may be
            # in this very workflow task, behind the decision (a worker restart delivers
            # both at once), so wait for it rather than refuse what `status` showed open.
            await workflow.wait_condition(lambda: not self._book.opens_next(d) or self._status in _FINAL)
            if self._status in _FINAL:
                raise ApplicationError(
                    f"the run ended ({self._status.value}) before {d.checkpoint} opened",
                    type=INVALID_DECISION,
                    non_retryable=True,
                )
        try:
            return self._book.submit(d, now=workflow.now(), via="update", hold_upcoming=False)
        except InvalidDecisionError as exc:
            raise ApplicationError(str(exc), type=INVALID_DECISION, non_retryable=True) from None

    @decide.validator
    def _validate_decide(self, payload: Any) -> None:
        try:
            d = _parse_decision("update", DECIDE_UPDATE, payload, None)
            self._book.check(d, hold_upcoming=False, defer_next=True)
        except InvalidDecisionError as exc:
            # `from None`: the cause would print the message twice, typed differently.
            raise ApplicationError(str(exc), type=INVALID_DECISION, non_retryable=True) from None

    @workflow.update(dynamic=True)
    def unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        raise ApplicationError(_unknown("update", name, _UPDATES), type=UNKNOWN_UPDATE, non_retryable=True)

    @unknown_update.validator
    def _validate_unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        raise ApplicationError(_unknown("update", name, _UPDATES), type=UNKNOWN_UPDATE, non_retryable=True)

    # -- cancel (workflows/cancellation.py says why an update) -------------------------

    @workflow.update(name=CANCEL_UPDATE)
    async def cancel(self, payload: Any) -> CancelReceipt:
        inp = self._cancellation.validate(payload, ended=self._ended())
        if not self._cancellation.request(inp):
            return self._cancellation.receipt("duplicate")
        # Answer once the run has taken it: checkpoints closed, status cancelled.
        await workflow.wait_condition(lambda: self._status in _FINAL)
        if self._status is not RunStatus.CANCELLED:  # it finished otherwise in the same instant
            self._cancellation.validate(payload, ended=self._status.value)
        return self._cancellation.receipt("applied")

    @cancel.validator
    def _validate_cancel(self, payload: Any) -> None:
        self._cancellation.validate(payload, ended=self._ended())

    def _ended(self) -> str | None:
        """The final status when the run ended other than cancelled, else None."""
        return (
            None if self._status not in _FINAL or self._status is RunStatus.CANCELLED else self._status.value
        )

    async def _cancelled(self) -> PipelineResult:
        """The main flow was cancelled (by the `cancel` update or by Temporal): end cleanly."""
        if self._status in _FINAL:  # a Temporal cancel that came while the run was ending anyway
            self._cancellation.taken()
            await self._events.flush()
            if self._status is RunStatus.FAILED:
                raise ApplicationError(self._end_reason, type=PHASE_FAILED, non_retryable=True)
            return self._result(self._status, self._end_reason)
        details = self._cancellation.ledger_details()
        record = self._cancellation.taken()
        for name in self._book.cancel_open():
            self._emit(
                EventKind.CHECKPOINT_CANCELLED,
                status="cancelled",
                checkpoint=name,
                message=f"{self._book.title(name)}: closed, the run was cancelled",
                details=details,
            )
        return await self._finish(
            RunStatus.CANCELLED, self._cancellation.reason(), approver=record.by, details=details
        )

    @workflow.signal(name="approve")
    def approve_signal(self, payload: Any) -> None:
        self._on_signal("approve", payload, Decision.APPROVE)

    @workflow.signal(name="reject")
    def reject_signal(self, payload: Any) -> None:
        self._on_signal("reject", payload, Decision.REJECT)

    @workflow.signal(name="decide")
    def decide_signal(self, payload: Any) -> None:
        self._on_signal("decide", payload, None)

    @workflow.signal(dynamic=True)
    def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """A misspelled signal name is a refused input, not a silent no-op."""
        payload: JsonValue = None
        if args:
            try:
                payload = workflow.payload_converter().from_payload(args[0].payload)
            except Exception:  # any payload at all: keep the refusal, drop what cannot be read
                payload = None
        self._refuse_signal(name, payload, _unknown("signal", name, DECISION_SIGNALS))

    def _on_signal(self, name: str, payload: Any, forced: Decision | None) -> None:
        """Signals cannot answer, so a bad one is kept as refused rather than lost."""
        try:
            decision = _parse_decision("signal", name, payload, forced)
            self._book.submit(decision, now=workflow.now(), via=f"signal:{name}", hold_upcoming=True)
        except InvalidDecisionError as exc:
            self._refuse_signal(name, payload, str(exc))

    def _refuse_signal(self, name: str, payload: Any, reason: str) -> None:
        via = f"signal:{name}"
        checkpoint = payload.get("checkpoint") if isinstance(payload, dict) else None
        self._book.refuse(now=workflow.now(), via=via, reason=reason, payload=payload)
        self._emit_refused(checkpoint if isinstance(checkpoint, str) else None, reason, via=via)

    @workflow.query(name="status")
    def status(self) -> PipelineStatus:
        phase = self._current_phase()
        return PipelineStatus(
            run_id=workflow.info().workflow_id,
            tenant=self._inp.tenant,
            project_id=self._inp.project_id,
            status=self._status,
            phase=phase.name if phase else None,
            phase_index=self._phase_index,
            pending=self._book.pending(),
            decisions=tuple(self._book.decisions),
            refused=tuple(self._book.refused),
            iterations=dict(self._book.iterations),
            pivots=self._book.pivots,
            outputs=dict(self._outputs),
            cancellation=self._cancellation.record,
        )

    # -- events and visibility ---------------------------------------------------

    def _emit(self, kind: EventKind, **fields: Any) -> RunEvent:
        phase = self._current_phase()
        fields.setdefault("phase", phase.name if phase else None)
        return self._events.emit(kind, **fields)

    async def _notify(self, event: RunEvent, payload: dict[str, JsonValue] | None = None) -> None:
        """Start the signed notification of `event` if the run has a webhook URL (never waits on it)."""
        if self._inp.webhook_url is not None:
            await send_webhook(event, url=str(self._inp.webhook_url), payload=payload)

    def _emit_refused(self, checkpoint: str | None, reason: str, *, via: str) -> None:
        known = checkpoint if checkpoint and self._spec.find_checkpoint(checkpoint) else None
        self._emit(
            EventKind.CHECKPOINT_REFUSED,
            status="refused",
            checkpoint=known,
            message="A decision was refused",
            details={"reason": reason, "via": via},
        )

    async def _finish(self, status: RunStatus, reason: str, **fields: Any) -> PipelineResult:
        kind = {
            RunStatus.COMPLETED: EventKind.PIPELINE_COMPLETED,
            RunStatus.REJECTED: EventKind.PIPELINE_REJECTED,
            RunStatus.EXPIRED: EventKind.PIPELINE_EXPIRED,
            RunStatus.FAILED: EventKind.PIPELINE_FAILED,
            RunStatus.CANCELLED: EventKind.PIPELINE_CANCELLED,
        }[status]
        finished = self._emit(kind, status=status.value, message=f"Validation {status.value}", **fields)
        self._end_reason = reason
        self._publish(status)
        # Decisions waiting for a checkpoint that will not open now answer before the run ends.
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._notify(finished)
        await self._events.flush()
        return self._result(status, reason)

    def _result(self, status: RunStatus, reason: str) -> PipelineResult:
        return PipelineResult(
            status=status,
            outputs=dict(self._outputs),
            decisions=tuple(self._book.decisions),
            reason=reason,
            cancellation=self._cancellation.record if status is RunStatus.CANCELLED else None,
        )

    def _phase_context(self, cp: CheckpointSpec) -> CheckpointContext:
        index = self._phase_index or 0
        phase = self._spec.phases[index]
        return phase_checkpoint_context(
            self._spec,
            phase_index=index,
            checkpoint=cp,
            output=self._outputs.get(phase.name),
            iterations=self._book.iterations[phase.name],
            pivots=self._book.pivots,
        )

    def _current_phase(self) -> PhaseSpec | None:
        return None if self._phase_index is None else self._spec.phases[self._phase_index]

    def _publish(self, status: RunStatus) -> None:
        self._status = status
        phase = self._current_phase()
        awaiting = self._book.awaiting()
        workflow.upsert_search_attributes(
            [
                SA_STATUS.value_set(status.value),
                SA_TENANT.value_set(self._inp.tenant),
                SA_PHASE.value_set(phase.name) if phase else SA_PHASE.value_unset(),
                SA_AWAITING.value_set(awaiting) if awaiting else SA_AWAITING.value_unset(),
            ]
        )
        waiting = ", ".join(awaiting) or "nothing"
        workflow.set_current_details(
            f"**{status.value}** · phase {phase.title if phase else '-'} · awaiting {waiting}"
        )


def _unknown(kind: str, name: str, accepted: Sequence[str]) -> str:
    return f"unknown {kind} {name!r}; this run accepts {', '.join(accepted)}"


def _parse_decision(kind: str, name: str, payload: Any, forced: Decision | None) -> DecisionInput:
    """A decision from a signal's or the update's JSON, or one line saying what to fix."""
    example = '{"checkpoint": "approve_founders_brief", "approver": "alice"}'
    if isinstance(payload, DecisionInput):
        return payload
    if not isinstance(payload, dict):
        raise InvalidDecisionError(f"the {name} {kind} takes one JSON object, e.g. {example}")
    data = dict(payload)
    if forced is not None:
        if data.get("decision", forced.value) != forced.value:
            raise InvalidDecisionError(
                f"the {name} signal cannot carry decision {data['decision']!r}; use the decide signal"
            )
        data["decision"] = forced.value
    elif kind == "signal" and "decision" not in data:
        raise InvalidDecisionError('the decide signal needs a "decision" (approve, reject, iterate, ...)')
    try:
        return DecisionInput.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidDecisionError(f"invalid {name} {kind}: {problems}") from None
