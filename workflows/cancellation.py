"""Cancelling a run from inside: who asked, why, and stopping the main flow.

Why an update and not Temporal's own cancel: a Temporal cancel request carries no
identity (only an optional free-text reason that any caller may fill), so the run
could not record who stopped it, and it cannot answer: the caller never learns
whether the run had already finished, or was already cancelled. The `cancel` update
is validated before it touches history (a finished run refuses it with the reason),
records the request (by, reason, time) in the workflow's own state, answers a
duplicate as such, and then cancels the run's main task from inside. From there the
path is the one a Temporal cancel takes: the main task gets `asyncio.CancelledError`
where it waits, and Temporal cancels what it was waiting on (the activity, so its
compute process is killed or its Modal call cancelled once a heartbeat carries the
cancel; the child task, which does the same). A raw `temporal workflow cancel` (or
the UI's button) still works: it lands on the same path, recorded with the canceller
unknown.

After the cancellation the workflow is not in a cancelled state: it catches the
error and goes on to close its checkpoints, write its events (the EventLog writer
is its own task, which a cancel never reaches), send the webhook and return a clean
result whose status is `cancelled`. Activities and children it starts from then on
run normally, because the cancel was caught and the main task uncancelled.

Workflow code only: no I/O, the clock is the workflow's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import JsonValue, ValidationError

    from boomerang.models.cancel import VIA_TEMPORAL, CancelInput, CancelReceipt, CancelRecord

INVALID_CANCEL = "InvalidCancel"
_EXAMPLE = '{"by": "alice", "reason": "wrong brief"}'


class Cancellation:
    """One run's cancellation: the request it took, and the main task to stop."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.record: CancelRecord | None = None
        self._main: asyncio.Task[Any] | None = None

    def attach(self) -> None:
        """Call first thing in the workflow's run method: this task is the one to cancel."""
        self._main = asyncio.current_task()
        if self.record is not None and self._main is not None:  # a cancel that came before the run began
            self._main.cancel()

    def validate(self, payload: Any, *, ended: str | None) -> CancelInput:
        """The request, or an ApplicationError the caller sees; `ended` is a final status
        other than cancelled (None while the run goes on)."""
        inp = parse_cancel(payload)
        if ended is not None and self.record is None:
            raise ApplicationError(
                f"run {self.run_id} has finished ({ended}); nothing to cancel",
                type=INVALID_CANCEL,
                non_retryable=True,
            )
        return inp

    def request(self, inp: CancelInput) -> bool:
        """Record the request and stop the main task; False when it was already cancelled."""
        if self.record is not None:
            return False
        self.record = CancelRecord(by=inp.by, reason=inp.reason, requested_at=workflow.now())
        if self._main is not None:
            self._main.cancel()
        return True

    def taken(self) -> CancelRecord:
        """The request being carried out: the update's, or Temporal's own cancel (nobody named)."""
        if self.record is None:
            self.record = CancelRecord(by=None, requested_at=workflow.now(), via=VIA_TEMPORAL)
        task = asyncio.current_task()
        if task is not None:
            # Caught and carried on from: later awaits must not see a pending cancel.
            task.uncancel()
        return self.record

    def receipt(self, status: str) -> CancelReceipt:
        record = self.record
        return CancelReceipt.model_validate(
            {
                "run_id": self.run_id,
                "status": status,
                "by": record.by if record else None,
                "reason": record.reason if record else None,
                "requested_at": record.requested_at if record else None,
            }
        )

    def ledger_details(self) -> dict[str, JsonValue]:
        """Who cancelled and why, for the Ledger only (never the Charter message)."""
        record = self.taken()
        return {
            "cancelled_by": record.by or "unknown",
            "reason": record.reason,
            "via": record.via,
            "requested_at": record.requested_at.isoformat(),
        }

    def reason(self) -> str:
        record = self.taken()
        who = record.by or "unknown (a Temporal cancel)"
        return f"cancelled by {who}" + (f": {record.reason}" if record.reason else "")


def parse_cancel(payload: Any) -> CancelInput:
    """A cancel request from the update's JSON, or one line saying what to fix."""
    if isinstance(payload, CancelInput):
        return payload
    if not isinstance(payload, dict):
        raise ApplicationError(
            f"the cancel update takes one JSON object, e.g. {_EXAMPLE}",
            type=INVALID_CANCEL,
            non_retryable=True,
        )
    try:
        return CancelInput.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
        )
        raise ApplicationError(
            f"invalid cancel update: {problems}", type=INVALID_CANCEL, non_retryable=True
        ) from None
