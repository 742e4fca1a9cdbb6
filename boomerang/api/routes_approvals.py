"""Approvals: what waits for the caller's tenant, and deciding it.

A decision goes through `BoomerangClient.decide`, the run's own `decide` update:
the same validator, the same receipt and the same refusal messages as the CLI,
the Temporal CLI and the Python client. The approver is the token's name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from boomerang.api.auth import Approver, Caller
from boomerang.api.deps import ApiContext, context, not_found, owned_run, upstream
from boomerang.api.schemas import ApproveRequest, errors
from boomerang.client import PendingApproval
from boomerang.errors import InvalidDecisionError, UnknownRunError
from boomerang.models.decisions import DecisionInput, DecisionReceipt, ReceiptStatus

router = APIRouter(tags=["approvals"])
Ctx = Annotated[ApiContext, Depends(context)]


@router.get("/approvals", response_model=list[PendingApproval], responses=errors(401, 503, 504))
async def approvals(token: Caller, ctx: Ctx) -> list[PendingApproval]:
    """Checkpoints of the tenant's runs waiting for a decision, soonest deadline first."""
    async with upstream("approvals", ctx.timeout_s):
        return await ctx.client.pending_approvals(token.tenant)


@router.post(
    "/hitl/approve",
    response_model=DecisionReceipt,
    responses={
        202: {"model": DecisionReceipt, "description": "pending: no worker has taken it yet"},
        **errors(401, 403, 404, 409, 503, 504),
    },
)
async def approve(body: ApproveRequest, token: Approver, ctx: Ctx, response: Response) -> DecisionReceipt:
    """Decide a checkpoint: 200 with the receipt once the run took it (applied, held or
    duplicate); 202 `pending` when no worker has taken it yet (Temporal keeps it;
    resend with the same `decision_id` to learn the outcome, it never lands twice);
    409 with the run's reason when the run refuses it."""
    await owned_run(ctx, body.run_id, token.tenant)
    decision = DecisionInput(
        checkpoint=body.checkpoint,
        approver=token.name,
        decision=body.decision,
        comment=body.comment,
        decision_id=body.decision_id,
        target_phase=body.target_phase,
        budget_usd=body.budget_usd,
        opening=body.opening,
    )
    try:
        async with upstream("decision", ctx.timeout_s):
            # Answer `pending` well before the route's own timeout would answer 504.
            receipt = await ctx.client.decide(body.run_id, decision, wait_s=ctx.timeout_s / 2)
    except InvalidDecisionError as exc:
        raise HTTPException(409, str(exc)) from None
    except UnknownRunError:
        raise not_found(body.run_id) from None
    if receipt.status is ReceiptStatus.PENDING:
        response.status_code = 202
    return receipt
