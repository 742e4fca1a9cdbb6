"""How people reach a running pipeline: the `decide` and `cancel` updates, the
`approve` / `reject` / `decide` signals, the query the client reads a decision's
outcome with, and names the run does not know.

`DecisionIntake` holds the decision handlers any run with an `ApprovalBook` takes
(pipelines and sweeps); `RunIntake`, a base class of `ValidationPipeline`, adds the
`cancel` update and the refusal of names the run does not know, reading and changing
the run only through its `ApprovalBook`, its `Cancellation` and its `RunReporter`.
Every decision lands through `ApprovalBook.submit`, so it is checked and lands the
same way whichever door it came through. Workflow code only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import JsonValue, ValidationError

    from boomerang.constants import (
        CANCEL_UPDATE,
        DECIDE_UPDATE,
        DECISION_OUTCOME_QUERY,
        DECISION_SIGNALS,
        NOT_OPEN_YET,
    )
    from boomerang.errors import CheckpointNotOpenYetError, InvalidDecisionError
    from boomerang.models.cancel import CancelReceipt
    from boomerang.models.decisions import (
        DecisionInput,
        DecisionOutcome,
        DecisionReceipt,
        RunStatus,
    )
    from boomerang.models.pipeline import Decision
    from workflows.approvals import ApprovalBook
    from workflows.cancellation import Cancellation
    from workflows.reporting import RunReporter

INVALID_DECISION = "InvalidDecision"
# `DecisionRecord.via` of a decision the client sent (boomerang/decision_delivery.py).
CLIENT_VIA = "client"
UNKNOWN_UPDATE = "UnknownUpdate"
FINAL = frozenset(
    {RunStatus.COMPLETED, RunStatus.REJECTED, RunStatus.EXPIRED, RunStatus.FAILED, RunStatus.CANCELLED}
)
_UPDATES = (DECIDE_UPDATE, CANCEL_UPDATE)


class DecisionIntake:
    """The `decide` update and the `approve` / `reject` / `decide` signals, for any run
    that keeps its checkpoints in an `ApprovalBook` (pipelines, sweeps)."""

    _book: ApprovalBook
    # Whether a signal sent before its checkpoint's first opening waits for it (pipelines)
    # or is refused (sweeps: their one checkpoint opens only when spend demands it).
    _hold_early_signals = True

    # -- decide ------------------------------------------------------------------------

    @workflow.update(name=DECIDE_UPDATE)
    def decide(self, payload: Any) -> DecisionReceipt:
        # Lands at once or not at all: a handler that waited for the run to move would
        # interleave its completion with the run's commands, which a replay that groups
        # the same events differently could not reproduce.
        try:
            d = parse_decision("update", DECIDE_UPDATE, payload, None)
            return self._book.submit(d, now=workflow.now(), via="update", hold_upcoming=False)
        except InvalidDecisionError as exc:
            raise _refusal(exc) from None

    @decide.validator
    def _validate_decide(self, payload: Any) -> None:
        try:
            d = parse_decision("update", DECIDE_UPDATE, payload, None)
            self._book.check(d, hold_upcoming=False)
        except InvalidDecisionError as exc:
            # `from None`: the cause would print the message twice, typed differently.
            raise _refusal(exc) from None

    # -- the client's way: the decide signal, then the decision_outcome query -----------
    # Not the update: after a workflow task timed out on a starved worker the SDK core can
    # deliver an update in another activation on replay than live, and an accepted update
    # is a history event whose place the replay must reproduce (boomerang/decision_delivery.py).
    # The client sends the `decide` signal naming the sending (`delivery`); it lands as the
    # update would (held only for the checkpoint the running phase opens next, see
    # `_on_signal`) and the client reads what became of it.

    @workflow.query(name=DECISION_OUTCOME_QUERY)
    def decision_outcome(self, decision_id: str, delivery: str | None = None) -> DecisionOutcome:
        receipt = self._book.receipt_for(decision_id, delivery)
        if receipt is not None:
            return DecisionOutcome(receipt=receipt)
        refused = self._book.refusal_for(decision_id, delivery)
        return DecisionOutcome(refused=None if refused is None else refused.reason)

    # -- signals -----------------------------------------------------------------------

    @workflow.signal(name=DECISION_SIGNALS[0])
    def approve_signal(self, payload: Any) -> None:
        self._on_signal(DECISION_SIGNALS[0], payload, Decision.APPROVE)

    @workflow.signal(name=DECISION_SIGNALS[1])
    def reject_signal(self, payload: Any) -> None:
        self._on_signal(DECISION_SIGNALS[1], payload, Decision.REJECT)

    @workflow.signal(name=DECISION_SIGNALS[2])
    def decide_signal(self, payload: Any, delivery: str | None = None) -> None:
        # `delivery`: the client names each sending (boomerang/decision_delivery.py).
        self._on_signal(DECISION_SIGNALS[2], payload, None, delivery)

    def _on_signal(
        self, name: str, payload: Any, forced: Decision | None, delivery: str | None = None
    ) -> None:
        """Signals cannot answer, so a bad one is kept as refused rather than lost."""
        # A sending that names itself comes from Boomerang's client (CLI, API, inbox), which
        # reads the outcome: it lands as the update would, or not at all.
        client = delivery is not None
        try:
            decision = parse_decision("signal", name, payload, forced)
            via = CLIENT_VIA if client else f"signal:{name}"
            # The client's sending is held only for the checkpoint the running phase opens
            # next with nobody's input: whether it is taken just before or just after the
            # phase result in one workflow task (a replay may group them otherwise than the
            # live run did), it then lands on that opening either way.
            hold = self._hold_early_signals and (not client or self._book.opens_next(decision))
            self._book.submit(decision, now=workflow.now(), via=via, hold_upcoming=hold, delivery=delivery)
        except InvalidDecisionError as exc:
            self._refuse_signal(name, payload, str(exc), delivery)

    def _refuse_signal(self, name: str, payload: Any, reason: str, delivery: str | None = None) -> None:
        via = CLIENT_VIA if delivery is not None else f"signal:{name}"
        self._book.refuse(now=workflow.now(), via=via, reason=reason, payload=payload, delivery=delivery)


class RunIntake(DecisionIntake):
    """A pipeline run's doors: decisions, the `cancel` update, and names it does not know."""

    _cancellation: Cancellation
    _report: RunReporter

    # -- cancel (workflows/cancellation.py says why an update) -------------------------

    @workflow.update(name=CANCEL_UPDATE)
    async def cancel(self, payload: Any) -> CancelReceipt:
        inp = self._cancellation.validate(payload, ended=self._ended())
        if not self._cancellation.request(inp):
            return self._cancellation.receipt("duplicate")
        # Answer once the run has taken it: checkpoints closed, status cancelled.
        await workflow.wait_condition(lambda: self._report.status in FINAL)
        if self._report.status is not RunStatus.CANCELLED:  # it finished otherwise in the same instant
            self._cancellation.validate(payload, ended=self._report.status.value)
        return self._cancellation.receipt("applied")

    @cancel.validator
    def _validate_cancel(self, payload: Any) -> None:
        self._cancellation.validate(payload, ended=self._ended())

    def _ended(self) -> str | None:
        """The final status when the run ended other than cancelled, else None."""
        status = self._report.status
        return None if status not in FINAL or status is RunStatus.CANCELLED else status.value

    @workflow.update(dynamic=True)
    def unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        raise ApplicationError(_unknown("update", name, _UPDATES), type=UNKNOWN_UPDATE, non_retryable=True)

    @unknown_update.validator
    def _validate_unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        raise ApplicationError(_unknown("update", name, _UPDATES), type=UNKNOWN_UPDATE, non_retryable=True)

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

    def _refuse_signal(self, name: str, payload: Any, reason: str, delivery: str | None = None) -> None:
        """Kept in the book (status shows it) and written to the Ledger and the Charter."""
        super()._refuse_signal(name, payload, reason, delivery)
        checkpoint = payload.get("checkpoint") if isinstance(payload, dict) else None
        via = CLIENT_VIA if delivery is not None else f"signal:{name}"
        self._report.refused(checkpoint if isinstance(checkpoint, str) else None, reason, via=via)


def _refusal(exc: InvalidDecisionError) -> ApplicationError:
    kind = NOT_OPEN_YET if isinstance(exc, CheckpointNotOpenYetError) else INVALID_DECISION
    return ApplicationError(str(exc), type=kind, non_retryable=True)


def _unknown(kind: str, name: str, accepted: Sequence[str]) -> str:
    return f"unknown {kind} {name!r}; this run accepts {', '.join(accepted)}"


def parse_decision(kind: str, name: str, payload: Any, forced: Decision | None) -> DecisionInput:
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
