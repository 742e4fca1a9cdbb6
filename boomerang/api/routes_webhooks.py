"""Webhooks in: signed completion callbacks from compute. Webhooks out: the dead letters.

`POST /webhooks/modal/task-complete` takes a Standard Webhooks request signed with
`BOOMERANG_WEBHOOK_SECRET`: signature and timestamp (5 minutes either way) are
checked on the raw body before it is parsed; the `webhook-id` is claimed in
Postgres so a replay is dropped; the callback reaches the task as the
`compute_callback` signal (which keeps one per webhook id, should a claim ever be
lost after the signal) — the task's own workflow, or the pipeline run whose phase runs
it inside. A failed signal un-claims the id, so the sender's retry
gets through.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle

from boomerang.api.auth import Caller
from boomerang.api.deps import ApiContext, context, upstream
from boomerang.api.schemas import RUN_ID_PATTERN, CallbackAck, errors
from boomerang.constants import CALLBACK_SIGNAL, PIPELINE_WORKFLOW, TASK_WORKFLOW
from boomerang.models.tasks import run_of_phase_task
from boomerang.models.webhooks import CallbackRecord, ComputeCallback
from boomerang.store.deliveries import DeadLetter
from boomerang.webhooks.signing import WebhookVerificationError

log = structlog.get_logger(__name__)
router = APIRouter(tags=["webhooks"])
Ctx = Annotated[ApiContext, Depends(context)]


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its local `$defs` references inlined (OpenAPI has no `$defs`)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


_SCHEMA = ComputeCallback.model_json_schema()
_CALLBACK_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline(_SCHEMA, _SCHEMA.get("$defs", {}))}},
    }
}


@router.post(
    "/webhooks/modal/task-complete",
    response_model=CallbackAck,
    responses=errors(401, 404, 503, 504),
    openapi_extra=_CALLBACK_BODY,
)
async def task_complete(
    request: Request,
    ctx: Ctx,
    webhook_id: Annotated[str | None, Header(alias="webhook-id")] = None,
    webhook_timestamp: Annotated[str | None, Header(alias="webhook-timestamp")] = None,
    webhook_signature: Annotated[str | None, Header(alias="webhook-signature")] = None,
) -> CallbackAck:
    """A compute function reports a task's completion (Standard Webhooks signature required)."""
    del webhook_id, webhook_timestamp, webhook_signature  # declared for OpenAPI; verified raw below
    if ctx.signer is None:
        raise HTTPException(503, "callbacks are off: BOOMERANG_WEBHOOK_SECRET is not set")
    raw = await request.body()
    try:
        received_id = ctx.signer.verify(raw, request.headers)
    except WebhookVerificationError as exc:
        log.info("callback refused", reason=type(exc).__name__)
        raise HTTPException(401, str(exc)) from None
    try:
        callback = ComputeCallback.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    handle, described = await _task_workflow(ctx, callback.task_id)
    if described.status != WorkflowExecutionStatus.RUNNING:
        return CallbackAck(status="too_late", task_id=callback.task_id)
    record = CallbackRecord(webhook_id=received_id, received_at=datetime.now(UTC), callback=callback)
    async with ctx.deliveries.claim_receipt(received_id, source="compute") as fresh:
        if not fresh:
            log.info("callback replay dropped", webhook_id=received_id)
            return CallbackAck(status="duplicate", task_id=callback.task_id)
        try:
            async with upstream("task", ctx.timeout_s):
                await handle.signal(CALLBACK_SIGNAL, record)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            return CallbackAck(status="too_late", task_id=callback.task_id)  # finished in between
    log.info("callback accepted", webhook_id=received_id, task_id=callback.task_id)
    return CallbackAck(status="accepted", task_id=callback.task_id)


async def _task_workflow(
    ctx: ApiContext, task_id: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The workflow that runs `task_id`: its own `BoomerAngTask`, or the pipeline run whose
    phase runs it inside (ids `<run id>/task-<nnn>-<type>`); 404 when there is neither."""
    run_id = run_of_phase_task(task_id)
    for workflow_id, workflow_type in ((task_id, TASK_WORKFLOW), (run_id, PIPELINE_WORKFLOW)):
        if workflow_id is None:
            continue
        handle = ctx.client.temporal.get_workflow_handle(workflow_id)
        try:
            async with upstream("task", ctx.timeout_s):
                described = await handle.describe()
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            continue
        if described.workflow_type != workflow_type:
            break  # an id of something else: not a task
        return handle, described
    raise HTTPException(404, f"no task {task_id!r}")


@router.get("/webhooks/dead-letters", response_model=list[DeadLetter], responses=errors(401, 503))
async def dead_letters(
    token: Caller, ctx: Ctx, run_id: Annotated[str | None, Query(pattern=RUN_ID_PATTERN)] = None
) -> list[DeadLetter]:
    """Notifications to the tenant's endpoints that were given up on, newest first."""
    return await ctx.deliveries.dead_letters(tenant=token.tenant, run_id=run_id)
