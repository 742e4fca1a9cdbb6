"""Cancelling a run over HTTP: `POST /runs/{run_id}/cancel`, a pipeline or a task alone.

It goes through `BoomerangClient.cancel`, the run's own `cancel` update: the same
checks, receipt and refusal messages as `boomerang cancel` and the Python client.
Who cancels is the token's name; another tenant's run is a 404, like a missing one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from boomerang.api.auth import Approver
from boomerang.api.deps import ApiContext, context, not_found, owned_run, upstream
from boomerang.api.schemas import RUN_ID_PATTERN, errors
from boomerang.errors import CancelRefusedError, UnknownRunError
from boomerang.models.cancel import CancelReceipt

router = APIRouter(tags=["runs"])
Ctx = Annotated[ApiContext, Depends(context)]
RunId = Annotated[
    str, Path(pattern=RUN_ID_PATTERN, description="A run id (a pipeline, or a task run alone).")
]


class CancelRequest(BaseModel):
    """Why the run is cancelled (optional); who cancels is the token's name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str | None = Field(default=None, max_length=2000, description="Kept in the Ledger.")


@router.post(
    "/runs/{run_id}/cancel",
    response_model=CancelReceipt,
    responses={
        202: {"model": CancelReceipt, "description": "pending: no worker has taken it yet"},
        **errors(401, 403, 404, 409, 503, 504),
    },
)
async def cancel(
    run_id: RunId,
    token: Approver,
    ctx: Ctx,
    response: Response,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> CancelReceipt:
    """Cancel a run: in-flight compute is stopped, open checkpoints close, the run ends
    `cancelled`. 200 `applied` (or `duplicate` when it already was: nothing changes);
    202 `pending` when no worker has taken it yet; 409 when it finished otherwise."""
    await owned_run(ctx, run_id, token.tenant)
    reason = body.reason if body is not None else None
    try:
        async with upstream("cancel", ctx.timeout_s):
            receipt = await ctx.client.cancel(run_id, by=token.name, reason=reason, wait_s=ctx.timeout_s / 2)
    except CancelRefusedError as exc:
        raise HTTPException(409, str(exc)) from None
    except UnknownRunError:
        raise not_found(run_id) from None
    if receipt.status == "pending":
        response.status_code = 202
    return receipt
