"""How the client lands a decision on a run: the `decide` signal, then the `decision_outcome` query.

The `decide` update would answer in one call, but after a workflow task timed out on a
starved worker the SDK core can deliver an update in another activation on replay than
it did live, and an accepted update is a history event whose place the replay must
reproduce: the fault soak finds such histories ("Nondeterminism error: Update machine
does not handle this event"; `bench/soak_faults.py --via update`) more often than with
signals. So the client

1. sends the `decide` signal with a second argument naming this sending (`delivery`).
   The run takes such a sending as it takes the update: it lands on the checkpoint
   open now, or is refused with the update's reasons (kept as a refused input). One
   difference: a decision for the checkpoint the running phase opens next is held for
   it, so that it lands on that opening whether the run takes it just before or just
   after the phase result (a replay may group the two otherwise than the live run);
2. asks the `decision_outcome` query what became of this sending: its receipt
   (`applied`, `held`, or `duplicate` when the decision_id was already taken, by this
   sending or one that raced it) or the refusal.

Exactly once comes from the decision_id: the run takes an id once. When no worker
answers in time the signal stays with Temporal (the run validates it when a worker
takes it) and the receipt says `pending`.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from boomerang.constants import DECISION_OUTCOME_QUERY, DECISION_SIGNALS
from boomerang.errors import BoomerangError, InvalidDecisionError, RunStuckError
from boomerang.models.decisions import DecisionInput, DecisionOutcome, DecisionReceipt, ReceiptStatus

DECIDE_SIGNAL = DECISION_SIGNALS[2]
# The outcome usually comes with the workflow task that takes the signal (the query
# waits for it); a run that has not taken it yet is asked again, backing off.
_FIRST_POLL_S, _MAX_POLL_S = 0.005, 0.1


class _Unanswered(Exception):
    """No worker answered the query within the wait (none running, or all busy)."""


class RunFinishedError(BoomerangError):
    """The run has closed; it takes no more decisions (the client says how it ended)."""


async def deliver(
    handle: WorkflowHandle[Any, Any], decision: DecisionInput, *, wait_s: float
) -> DecisionReceipt:
    """Land `decision` (which has a decision_id) on the run behind `handle`.

    Returns the run's receipt (`applied`, `held`, `duplicate`), or `pending` when no worker
    answered within `wait_s`. Raises `InvalidDecisionError` with the run's reason,
    `RunFinishedError` when the run has closed, `RunStuckError` when it cannot answer,
    and the `RPCError` of anything else (no such run).
    """
    assert decision.decision_id is not None, "deliver needs a decision_id (BoomerangClient.decide sets one)"
    deadline = asyncio.get_running_loop().time() + wait_s
    delivery = secrets.token_hex(8)
    await _signal(handle, decision, delivery)
    outcome = await _outcome(handle, decision.decision_id, delivery, deadline)
    if outcome is None:
        return _pending(decision)
    if outcome.receipt is not None:
        return outcome.receipt
    assert outcome.refused is not None  # `_outcome` returns one that says something
    raise InvalidDecisionError(outcome.refused)


async def _outcome(
    handle: WorkflowHandle[Any, Any], decision_id: str, delivery: str, deadline: float
) -> DecisionOutcome | None:
    """What the run did with this sending; None when no worker answered in time."""
    loop = asyncio.get_running_loop()
    pause = _FIRST_POLL_S
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        try:
            query = handle.query(
                DECISION_OUTCOME_QUERY, args=[decision_id, delivery], result_type=DecisionOutcome
            )
            outcome: DecisionOutcome = await asyncio.wait_for(query, timeout=remaining)
        except TimeoutError:
            return None
        except WorkflowQueryFailedError as exc:
            raise RunStuckError(f"run {handle.id} cannot answer: {exc}") from exc
        except RPCError as exc:
            if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                return None
            raise
        if outcome.receipt or outcome.refused:
            return outcome
        if loop.time() + pause >= deadline:
            return None
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, _MAX_POLL_S)


async def _signal(handle: WorkflowHandle[Any, Any], decision: DecisionInput, delivery: str) -> None:
    payload = decision.model_dump(mode="json", exclude_none=True)
    try:
        await handle.signal(DECIDE_SIGNAL, args=[payload, delivery])
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
