"""What a pipeline run tells the outside: events, webhooks, and what the Temporal UI lists.

`RunReporter.emit` queues a `RunEvent` for the Charter and the Ledger (the EventLog
writes it beside the run), `notify` starts its signed webhook, and `publish` upserts
the search attributes and current details the UI filters on. Workflow code only.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import JsonValue

    from boomerang.constants import SA_AWAITING, SA_PHASE, SA_STATUS, SA_TENANT
    from boomerang.models.decisions import RunStatus
    from boomerang.models.events import EventKind, RunEvent
    from boomerang.models.notify import ApprovalNotice, NoticeKind, inbox_link
    from boomerang.models.pipeline import CheckpointSpec, PhaseSpec, PipelineInput
    from workflows.approvals import ApprovalBook
    from workflows.machine import PipelineMachine
    from workflows.notify import send_notice
    from workflows.recording import EventLog
    from workflows.webhooks import send_webhook


# The event that ends a run, by how it ended.
FINISHED = {
    RunStatus.COMPLETED: EventKind.PIPELINE_COMPLETED,
    RunStatus.REJECTED: EventKind.PIPELINE_REJECTED,
    RunStatus.EXPIRED: EventKind.PIPELINE_EXPIRED,
    RunStatus.FAILED: EventKind.PIPELINE_FAILED,
    RunStatus.CANCELLED: EventKind.PIPELINE_CANCELLED,
}


class RunReporter:
    def __init__(
        self, inp: PipelineInput, *, events: EventLog, book: ApprovalBook, machine: PipelineMachine
    ) -> None:
        self._inp = inp
        self.events = events
        self._book = book
        self._machine = machine
        self.status = RunStatus.RUNNING

    def emit(self, kind: EventKind, **fields: Any) -> RunEvent:
        """Queue an event of the current phase (unless `phase` is given) for the Charter and Ledger."""
        phase = self._machine.phase
        fields.setdefault("phase", phase.name if phase else None)
        return self.events.emit(kind, **fields)

    async def notify(self, event: RunEvent, payload: dict[str, JsonValue] | None = None) -> None:
        """Start the signed notification of `event` if the run has a webhook URL (never waits on it)."""
        if self._inp.webhook_url is not None:
            await send_webhook(event, url=str(self._inp.webhook_url), payload=payload)

    async def notice(
        self, kind: NoticeKind, event: RunEvent, cp: CheckpointSpec, context: dict[str, JsonValue]
    ) -> None:
        """Tell people (Slack, e-mail) with a link to the inbox item, if the run knows the inbox."""
        if self._inp.inbox_url is None:
            return
        summary, recommendation = context.get("summary"), context.get("recommendation")
        await send_notice(
            ApprovalNotice(
                notice_id=event.event_key,
                kind=kind,
                run_id=event.run_id,
                tenant=self._inp.tenant,
                project_id=self._inp.project_id,
                checkpoint=cp.name,
                title=cp.title,
                phase=event.phase,
                deadline=event.deadline,
                summary=summary if isinstance(summary, str) else "",
                recommendation=recommendation if isinstance(recommendation, str) else None,
                options=tuple(o.value for o in cp.options),
                link=inbox_link(self._inp.inbox_url, event.run_id, cp.name),
            )
        )

    def refused(self, checkpoint: str | None, reason: str, *, via: str) -> None:
        """A refused input, in the Ledger (and, customer-safe, the Charter)."""
        known = checkpoint if checkpoint and self._machine.spec.find_checkpoint(checkpoint) else None
        self.emit(
            EventKind.CHECKPOINT_REFUSED,
            status="refused",
            checkpoint=known,
            message="A decision was refused",
            details={"reason": reason, "via": via},
        )

    def publish(self, status: RunStatus) -> None:
        """The run's status, phase and what it waits for, as the Temporal UI lists them."""
        self.status = status
        phase: PhaseSpec | None = self._machine.phase
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
        details = f"**{status.value}** · phase {phase.title if phase else '-'} · awaiting {waiting}"
        if self._inp.inbox_url is not None:
            run_id = workflow.info().workflow_id
            links = [
                f"[{name} in the inbox]({inbox_link(self._inp.inbox_url, run_id, name)})" for name in awaiting
            ]
            details += "".join(f"\n\n{link}" for link in links)
        workflow.set_current_details(details)
