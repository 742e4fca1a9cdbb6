"""Sweeps over HTTP: start one (202 + id), follow its progress, export its results.

    POST /sweeps                              {"function": "sweep_simulate", "grid": {...}}
    GET  /sweeps/{sweep_id}                   progress: done, failed, running, pending, batches
    GET  /sweeps/{sweep_id}/results?format=   every item once, JSONL (default) or CSV
    POST /sweeps/{sweep_id}/cancel            in-flight calls cancelled, finished items kept

The tenant is the token's; the body is checked by `resolve_sweep`, as the CLI and
`BoomerangClient.start_sweep` check it, and a sweep that cannot start is a 422 that
names every problem. Another tenant's sweep is a 404, like a missing one. What a
tenant reads is built field by field: spend in USD, never a provider, model or GPU;
item outputs lose the keys that name them, errors that name them are replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from boomerang.api.auth import Approver, Caller
from boomerang.api.deps import ApiContext, context, owned_run, upstream
from boomerang.api.routes_cancel import CancelRequest
from boomerang.api.schemas import RUN_ID_PATTERN, errors
from boomerang.constants import SWEEP_WORKFLOW
from boomerang.errors import CancelRefusedError, UnknownRunError
from boomerang.models.cancel import CancelReceipt
from boomerang.models.sweeps import AxisCount, BatchCount, SweepProgress, SweepResult, SweepSpec, SweepState
from boomerang.models.task_view import customer_output, customer_summary
from boomerang.money import Usd
from boomerang.store.sweeps import SweepResults
from boomerang.sweep_export import MEDIA_TYPES, ExportFormat, export_lines
from boomerang.sweeps import resolve_sweep
from modal_app.registry import Registry, load_registry, parse_modules
from workflows.sweep_plan import SweepSpecError

router = APIRouter(tags=["sweeps"])
Ctx = Annotated[ApiContext, Depends(context)]
SweepId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The id POST /sweeps returned.")]
# An item error that names a provider, model or cost is replaced with this.
ITEM_FAILED = "the item failed"


class SweepRequest(BaseModel):
    """A `SweepSpec` without the operator's knobs (heartbeats, history, inline size); no tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    function: str | None = Field(
        default=None, min_length=1, max_length=100, description="e.g. sweep_simulate"
    )
    task_type: str | None = Field(
        default=None, min_length=1, max_length=100, description="e.g. data_analysis"
    )
    grid: dict[str, list[JsonValue]] | None = Field(
        default=None, description="Named axes; items: their product."
    )
    items: list[dict[str, JsonValue]] | None = Field(default=None, description="Or the items themselves.")
    base: dict[str, JsonValue] = Field(default_factory=dict, description="Fields every item gets.")
    max_parallel: int = Field(default=8, description="Calls in flight at most (1 or more).")
    batch_by: str | None = Field(default=None, description="An axis: batch k+1 starts when batch k ended.")
    variant_axis: str | None = Field(default=None, description="An axis whose value names the function.")
    retries: int = Field(default=2, ge=0, le=20)
    on_item_failure: Literal["continue", "stop"] = "continue"
    max_cost_usd: Decimal | None = Field(default=None, gt=0, description="Past it: an approval checkpoint.")
    expected_seconds: float = Field(default=10, gt=0, description="Seconds per item, until observed.")


class SweepAccepted(BaseModel):
    sweep_id: str
    status_url: str
    results_url: str


class SweepView(BaseModel):
    """`GET /sweeps/{id}`: the sweep's progress as its tenant may see it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sweep_id: str
    status: SweepState
    total: int
    done: int
    failed: int
    cancelled: int
    running: int
    pending: int
    spent_usd: Usd
    max_cost_usd: Usd | None = None
    estimate_usd: Usd | None = Field(default=None, description="Expected cost of the items not yet done.")
    eta_seconds: float | None = None
    batches: list[BatchCount]
    axes: dict[str, list[AxisCount]]
    awaiting: list[str] = Field(description="Open checkpoints, e.g. approve_budget_increase.")
    reason: str | None = None


def _registry(ctx: ApiContext) -> Registry:
    return load_registry(parse_modules(ctx.settings.compute_modules))


def _refused(exc: Exception) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body",), "msg": str(exc), "input": None}])


@router.post("/sweeps", status_code=202, response_model=SweepAccepted, responses=errors(401, 403, 503, 504))
async def start_sweep(body: SweepRequest, token: Approver, ctx: Ctx, response: Response) -> SweepAccepted:
    """Start a sweep for the token's tenant; nothing starts if any item does not fit."""
    try:
        spec = SweepSpec.model_validate(body.model_dump(exclude_unset=True))
        registry = _registry(ctx)
        # Up to 100,000 items are checked against the payload schema: off the event loop.
        await asyncio.to_thread(resolve_sweep, spec, registry)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    except SweepSpecError as exc:
        raise _refused(exc) from None
    async with upstream("sweep", ctx.timeout_s):
        sweep_id = await ctx.client.start_sweep(spec, tenant=token.tenant, registry=registry)
    response.headers["Location"] = f"/sweeps/{sweep_id}"
    return SweepAccepted(
        sweep_id=sweep_id, status_url=f"/sweeps/{sweep_id}", results_url=f"/sweeps/{sweep_id}/results"
    )


def _not_found(sweep_id: str) -> HTTPException:
    return HTTPException(404, f"no sweep {sweep_id!r}")


async def _owned_sweep(ctx: ApiContext, sweep_id: str, tenant: str) -> None:
    try:
        described = await owned_run(ctx, sweep_id, tenant)
    except HTTPException as exc:
        raise _not_found(sweep_id) if exc.status_code == 404 else exc from None
    if described.workflow_type != SWEEP_WORKFLOW:
        raise _not_found(sweep_id)


@router.get("/sweeps/{sweep_id}", response_model=SweepView, responses=errors(401, 404, 503, 504))
async def sweep(sweep_id: SweepId, token: Caller, ctx: Ctx) -> SweepView:
    """Done, failed, running and pending items, per batch and axis value; spend and ETA."""
    await _owned_sweep(ctx, sweep_id, token.tenant)
    async with upstream("sweep", ctx.timeout_s):
        p = await ctx.client.sweep_progress(sweep_id)
    return view(p)


def view(p: SweepProgress) -> SweepView:
    return SweepView(
        sweep_id=p.sweep_id, status=p.status, total=p.total, done=p.done, failed=p.failed,
        cancelled=p.cancelled, running=p.running, pending=p.pending, spent_usd=p.spent_usd,
        max_cost_usd=p.max_cost_usd, estimate_usd=p.estimate_usd, eta_seconds=p.eta_seconds,
        batches=p.batches, axes=p.axes, awaiting=p.awaiting,
        reason=customer_summary(p.reason, ()) if p.reason else None,
    )  # fmt: skip


def customer_row(row: SweepResult) -> SweepResult:
    """The row without what only the Ledger may hold: output keys and error text that name it."""
    output = customer_output(row.output) if row.output is not None else None
    error = (customer_summary(row.error, ()) or ITEM_FAILED) if row.error else None
    return row.model_copy(update={"output": output, "error": error})


@router.get(
    "/sweeps/{sweep_id}/results",
    responses={
        200: {"content": {t: {} for t in MEDIA_TYPES.values()}, "description": "One line per item."},
        **errors(401, 404, 503, 504),
    },
)
async def results(
    sweep_id: SweepId,
    token: Caller,
    ctx: Ctx,
    fmt: Annotated[ExportFormat, Query(alias="format", description="jsonl or csv")] = "jsonl",
) -> StreamingResponse:
    """Every item that has ended, once, by index: parameters, status, output (or error), cost."""
    await _owned_sweep(ctx, sweep_id, token.tenant)

    async def rows() -> AsyncIterator[SweepResult]:
        async for row in SweepResults(ctx.pool).rows(sweep_id, tenant=token.tenant):
            yield customer_row(row)

    return StreamingResponse(export_lines(rows(), fmt), media_type=MEDIA_TYPES[fmt])


@router.post(
    "/sweeps/{sweep_id}/cancel",
    response_model=CancelReceipt,
    responses={202: {"model": CancelReceipt}, **errors(401, 403, 404, 409, 503, 504)},
)
async def cancel(
    sweep_id: SweepId,
    token: Approver,
    ctx: Ctx,
    response: Response,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> CancelReceipt:
    """Cancel the sweep: in-flight calls are cancelled and recorded so, finished items kept."""
    await _owned_sweep(ctx, sweep_id, token.tenant)
    try:
        async with upstream("cancel", ctx.timeout_s):
            receipt = await ctx.client.cancel(
                sweep_id, by=token.name, reason=body.reason if body else None, wait_s=ctx.timeout_s / 2
            )
    except CancelRefusedError as exc:
        raise HTTPException(409, str(exc)) from None
    except UnknownRunError:
        raise _not_found(sweep_id) from None
    if receipt.status == "pending":
        response.status_code = 202
    return receipt
