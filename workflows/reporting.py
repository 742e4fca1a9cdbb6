"""What a pipeline run tells the outside: events, webhooks, and what the Temporal UI lists.

`RunReporter.emit` queues a `RunEvent` for the Charter and the Ledger (the EventLog
writes it beside the run), `notify` starts its signed webhook, and `publish` upserts
the search attributes and current details the UI filters on. Workflow code only.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

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


# Runs started since: search attributes upserted only when they change (`publish`).
PUBLISH_ON_CHANGE = "publish-on-change"

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
        # Search attributes: what the last `publish` wants, and what was last upserted.
        self._wanted: dict[str, object] = {}
        self._shown: dict[str, object] = {}
        self._on_change = False

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

    def publish(self, status: RunStatus, *, defer: bool = False) -> None:
        """The run's status, phase and what it waits for, as the Temporal UI lists them.

        Each upsert is a history event and a visibility write (SQLite under `boomerang
        dev`), so runs since `PUBLISH_ON_CHANGE` upsert only the attributes that changed,
        and `defer` leaves them for `flush` when the run is about to move on anyway (a
        decision is followed by the next checkpoint, phase or end in the same workflow
        task): 28 upserts per default run become 17. Earlier runs upsert everything at
        once, as their histories have it."""
        self.status = status
        phase: PhaseSpec | None = self._machine.phase
        awaiting = self._book.awaiting()
        self._wanted = {
            SA_STATUS.name: status.value,
            SA_TENANT.name: self._inp.tenant,
            SA_PHASE.name: phase.name if phase else None,
            SA_AWAITING.name: tuple(awaiting) or None,
        }
        self._on_change = workflow.patched(PUBLISH_ON_CHANGE)
        if not self._on_change:
            workflow.upsert_search_attributes(_updates(self._wanted))
        elif not defer:
            self.flush()
        waiting = ", ".join(awaiting) or "nothing"
        details = f"**{status.value}** · phase {phase.title if phase else '-'} · awaiting {waiting}"
        if self._inp.inbox_url is not None:
            run_id = workflow.info().workflow_id
            links = [
                f"[{name} in the inbox]({inbox_link(self._inp.inbox_url, run_id, name)})" for name in awaiting
            ]
            details += "".join(f"\n\n{link}" for link in links)
        workflow.set_current_details(details)

    def flush(self) -> None:
        """Upsert what `publish` left for later, only what changed since the last upsert."""
        if not self._on_change:
            return  # an earlier run: `publish` upserted everything already
        changed = {k: v for k, v in self._wanted.items() if k not in self._shown or self._shown[k] != v}
        if changed:
            workflow.upsert_search_attributes(_updates(changed))
            self._shown.update(changed)


def _updates(values: dict[str, object]) -> list[SearchAttributeUpdate[Any]]:
    keys = {SA_STATUS.name: SA_STATUS, SA_TENANT.name: SA_TENANT, SA_PHASE.name: SA_PHASE}
    updates: list[SearchAttributeUpdate[Any]] = []
    for name, value in values.items():
        if name == SA_AWAITING.name:
            assert value is None or isinstance(value, tuple)
            updates.append(SA_AWAITING.value_set(list(value)) if value else SA_AWAITING.value_unset())
        else:
            key = keys[name]
            updates.append(key.value_set(str(value)) if value is not None else key.value_unset())
    return updates
