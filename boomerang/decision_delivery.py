"""How the client lands a decision on a run: check by query, send by signal, read the outcome.

The `decide` update would do all three in one call, but an accepted update is a history
event the SDK core has to place among the run's own commands on replay exactly as it was
placed live, and after a workflow task timed out on a starved worker it can place it
differently ("Nondeterminism error: Update machine does not handle this event"; the
fault soak finds it, `bench/soak_faults.py --via update`). A signal is an ordinary
history event and replays the same way every time. So:

1. the `check_decision` query answers whether the decision would land now, with the
   reason the run would give if not; nothing is written, so a decision nobody could
   make never enters the run's history;
2. the `decide` signal carries it, its opening pinned to the one the check saw open, so
   a checkpoint that closed and re-opened in between refuses it instead of taking it
   for a later opening;
3. the `decision_outcome` query says what the run did with its decision_id.

Exactly once comes from the decision_id: the run takes an id once, and a resend answers
with the first receipt. When no worker answers in time the signal is still sent (the
run validates it when a worker takes it) and the receipt says `pending`.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, TypeVar

from temporalio.client import WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from boomerang.constants import CHECK_DECISION_QUERY, DECISION_OUTCOME_QUERY, DECISION_SIGNALS
from boomerang.errors import BoomerangError, CheckpointNotOpenYetError, InvalidDecisionError, RunStuckError
from boomerang.models.decisions import (
    CheckVerdict,
    DecisionCheck,
    DecisionInput,
    DecisionOutcome,
    DecisionReceipt,
    ReceiptStatus,
)

R = TypeVar("R")
DECIDE_SIGNAL = DECISION_SIGNALS[2]
# The outcome is usually there one workflow task after the signal (a few ms on a warm
# worker): ask soon, then back off so a busy worker is not flooded with queries.
_FIRST_POLL_S, _MAX_POLL_S = 0.01, 0.25
_NOT_OPEN_FIRST_S, _NOT_OPEN_MAX_S = 0.1, 1.0
# How long a query waits for the run's workflow task in flight to finish before asking
# anyway (a run whose Ledger writes retry through a PostgreSQL outage stays busy).
_QUIET_WAIT_S, _QUIET_FIRST_S, _QUIET_MAX_S = 2.0, 0.005, 0.05


class _Unanswered(Exception):
    """No worker answered a query within the wait (none running, or all busy)."""


class RunFinishedError(BoomerangError):
    """The run has closed; it takes no more decisions (the client says how it ended)."""


async def deliver(
    handle: WorkflowHandle[Any, Any], decision: DecisionInput, *, wait_s: float
) -> DecisionReceipt:
    """Land `decision` (which has a decision_id) on the run behind `handle`.

    Returns the run's receipt (`applied`, `duplicate`), or `pending` when no worker
    answered within `wait_s`. Raises `InvalidDecisionError` with the run's reason,
    `CheckpointNotOpenYetError` when its checkpoint was still about to open at the end of
    the wait, `RunFinishedError` when the run has closed, `RunStuckError` when its workflow task
    fails, and the `RPCError` of anything else (no such run).
    """
    assert decision.decision_id is not None, "deliver needs a decision_id (BoomerangClient.decide sets one)"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    try:
        check = await _check_until_open(handle, decision, deadline)
    except _Unanswered:
        await _signal(handle, decision, None)
        return _pending(decision)
    if check.verdict is CheckVerdict.DUPLICATE:
        assert check.receipt is not None
        return check.receipt
    pinned = decision
    if decision.opening is None:
        pinned = decision.model_copy(update={"opening": check.opening})
    # Names this sending, so that of two sendings of one decision that raced, one hears
    # `applied` and the other `duplicate`.
    delivery = secrets.token_hex(8)
    await _signal(handle, pinned, delivery)
    pause = _FIRST_POLL_S
    asked = (decision.decision_id, delivery)
    while True:
        try:
            outcome = await _query(handle, DECISION_OUTCOME_QUERY, asked, DecisionOutcome, deadline)
        except _Unanswered:
            return _pending(pinned)
        if outcome.receipt is not None:
            return outcome.receipt
        if outcome.refused is not None:
            raise InvalidDecisionError(outcome.refused)
        if loop.time() + pause >= deadline:
            return _pending(pinned)
        await asyncio.sleep(pause)
        pause = min(pause * 2, _MAX_POLL_S)


async def _check_until_open(
    handle: WorkflowHandle[Any, Any], decision: DecisionInput, deadline: float
) -> DecisionCheck:
    """Ask `check_decision` until it says the decision would land; a checkpoint about to
    open (its phase is finishing) is asked again until the deadline."""
    loop = asyncio.get_running_loop()
    payload = decision.model_dump(mode="json", exclude_none=True)
    pause = _NOT_OPEN_FIRST_S
    while True:
        check = await _query(handle, CHECK_DECISION_QUERY, (payload,), DecisionCheck, deadline)
        if check.verdict is CheckVerdict.INVALID:
            raise InvalidDecisionError(check.reason or "the run refused the decision")
        if check.verdict is not CheckVerdict.NOT_OPEN_YET:
            return check
        if loop.time() + pause >= deadline:
            reason = check.reason or f"checkpoint {decision.checkpoint} is not open yet"
            raise CheckpointNotOpenYetError(reason)
        await asyncio.sleep(pause)
        pause = min(pause * 2, _NOT_OPEN_MAX_S)


async def _query(
    handle: WorkflowHandle[Any, Any],
    name: str,
    args: tuple[object, ...],
    result_type: type[R],
    deadline: float,
) -> R:
    loop = asyncio.get_running_loop()
    await _until_quiet(handle, min(deadline, loop.time() + _QUIET_WAIT_S))
    remaining = deadline - loop.time()
    if remaining <= 0:
        raise _Unanswered()
    try:
        # The RPC deadline bounds how long a query waits for a worker to take it.
        query = handle.query(name, args=args, result_type=result_type)
        return await asyncio.wait_for(query, timeout=remaining)
    except TimeoutError:
        raise _Unanswered() from None
    except WorkflowQueryFailedError as exc:
        raise RunStuckError(f"run {handle.id} cannot answer: {exc}") from exc
    except RPCError as exc:
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise _Unanswered() from None
        raise


async def _until_quiet(handle: WorkflowHandle[Any, Any], until: float) -> None:
    """Wait (until `until` at most) for the run to have no workflow task in flight.

    A query that arrives during a workflow task is answered with that task's completion,
    and the SDK core then completes the task early and opens another for the local
    activities still running (the run's Ledger writes): one more workflow task per
    query. Asking the server first (no worker involved) saves about nine workflow tasks
    per pipeline run under load (bench/README.md)."""
    loop = asyncio.get_running_loop()
    pause = _QUIET_FIRST_S
    while True:
        described = await handle.describe()
        if not described.raw_description.HasField("pending_workflow_task"):
            return
        if loop.time() + pause >= until:
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, _QUIET_MAX_S)


async def _signal(handle: WorkflowHandle[Any, Any], decision: DecisionInput, delivery: str | None) -> None:
    payload = decision.model_dump(mode="json", exclude_none=True)
    try:
        await handle.signal(DECIDE_SIGNAL, args=[payload] if delivery is None else [payload, delivery])
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and "already completed" in exc.message:
            raise RunFinishedError() from exc
        raise


def _pending(decision: DecisionInput) -> DecisionReceipt:
    assert decision.decision_id is not None
    return DecisionReceipt(
        decision_id=decision.decision_id,
        checkpoint=decision.checkpoint,
        decision=decision.decision,
        status=ReceiptStatus.PENDING,
        opening=decision.opening,
    )
