"""Runs: start one (202 + run id), read its status, read its Charter."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from boomerang.api.auth import Approver, Caller
from boomerang.api.deps import ApiContext, context, not_found, owned_run, upstream
from boomerang.api.schemas import RUN_ID_PATTERN, KickoffRequest, KickoffResponse, errors
from boomerang.constants import PIPELINE_WORKFLOW
from boomerang.models.decisions import PipelineStatus
from boomerang.models.pipeline import PipelineInput
from boomerang.store.charter import CharterRow
from boomerang.store.queries import charter_for_run

router = APIRouter(tags=["runs"])
Ctx = Annotated[ApiContext, Depends(context)]
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The run id kickoff returned.")]


@router.post(
    "/kickoff", status_code=202, response_model=KickoffResponse, responses=errors(400, 401, 403, 503, 504)
)
async def kickoff(body: KickoffRequest, token: Approver, ctx: Ctx, response: Response) -> KickoffResponse:
    """Start a validation pipeline for the token's tenant; poll `status_url` for progress."""
    try:
        # The inbox URL comes from settings: notices and the Temporal UI link to the inbox item.
        fields = {
            **body.model_dump(exclude_unset=True),
            "tenant": token.tenant,
            "inbox_url": ctx.settings.inbox_base_url,
        }
        inp = PipelineInput.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    async with upstream("kickoff", ctx.timeout_s):
        run_id = await ctx.client.start_pipeline(inp)
    response.headers["Location"] = f"/status/{run_id}"
    return KickoffResponse(run_id=run_id, status_url=f"/status/{run_id}")


@router.get("/status/{run_id}", response_model=PipelineStatus, responses=errors(401, 404, 409, 503, 504))
async def status(run_id: RunId, token: Caller, ctx: Ctx) -> PipelineStatus:
    """Where the run is: phase, pending checkpoints with deadlines, decisions so far."""
    described = await owned_run(ctx, run_id, token.tenant)
    if described.workflow_type != PIPELINE_WORKFLOW:
        raise not_found(run_id)
    async with upstream("status", ctx.timeout_s):
        return await ctx.client.status(run_id)


@router.get("/runs/{run_id}/charter", response_model=list[CharterRow], responses=errors(401, 404, 503))
async def charter(run_id: RunId, token: Caller, ctx: Ctx) -> list[CharterRow]:
    """The run's Charter, read under the customer role: row-level security keeps it to the tenant."""
    rows = await charter_for_run(ctx.pool, run_id, token.tenant)
    if not rows:
        raise not_found(run_id)
    return rows
