"""Specialist tasks over HTTP: start one (202 + task id), read its outcome, customer-safe.

A task started here is the same `BoomerAngTask` that `boomerang task run` and
`BoomerangClient.start_task` start, from the same `TaskInput` (the tenant is the
token's). `GET /tasks/{task_id}` answers with a `TaskView`: status, output, summary
and execution time, never a cost, provider or model; another tenant's task is a 404,
like a missing one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, JsonValue, ValidationError
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus

from boomerang.api.auth import Approver, Caller
from boomerang.api.deps import ApiContext, context, owned_run, upstream
from boomerang.api.schemas import RUN_ID_PATTERN, errors
from boomerang.constants import TASK_WORKFLOW
from boomerang.models.task_view import TaskState, TaskView, customer_output, customer_summary
from boomerang.models.tasks import TaskInput, TaskOutcome
from boomerang.store.charter import CharterRow
from boomerang.store.queries import charter_for_run, ledger_for_run

router = APIRouter(tags=["tasks"])
Ctx = Annotated[ApiContext, Depends(context)]
TaskId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The task id POST /tasks returned.")]

_ENDED: dict[WorkflowExecutionStatus, TaskState] = {
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TERMINATED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}


class TaskRequest(BaseModel):
    """A `TaskInput` without `tenant` (the token's) or the fields a pipeline sets for its own tasks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_type: str = Field(min_length=1, max_length=100, description="e.g. code_generation, research")
    payload: dict[str, JsonValue] = Field(default_factory=dict)
    boomer_ang_id: str | None = Field(default=None, min_length=1, max_length=100, description="e.g. Code_Ang")
    project_id: str | None = Field(default=None, min_length=1, max_length=200)
    max_cost_usd: Decimal | None = Field(default=None, gt=0, description="Not started above this estimate.")
    webhook_url: HttpUrl | None = Field(default=None, description="Signed notifications of the task go here.")


class TaskAccepted(BaseModel):
    task_id: str
    status_url: str


def not_found(task_id: str) -> HTTPException:
    return HTTPException(404, f"no task {task_id!r}")


@router.post("/tasks", status_code=202, response_model=TaskAccepted, responses=errors(401, 403, 503, 504))
async def start_task(body: TaskRequest, token: Approver, ctx: Ctx, response: Response) -> TaskAccepted:
    """Start a specialist task for the token's tenant; poll `status_url` for its outcome."""
    try:
        inp = TaskInput.model_validate({**body.model_dump(exclude_unset=True), "tenant": token.tenant})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    async with upstream("task", ctx.timeout_s):
        task_id = await ctx.client.start_task(inp)
    response.headers["Location"] = f"/tasks/{task_id}"
    return TaskAccepted(task_id=task_id, status_url=f"/tasks/{task_id}")


@router.get("/tasks/{task_id}", response_model=TaskView, responses=errors(401, 404, 503, 504))
async def task(task_id: TaskId, token: Caller, ctx: Ctx) -> TaskView:
    """The task's status and, once it ended, its output, summary and execution time."""
    try:
        described = await owned_run(ctx, task_id, token.tenant)
    except HTTPException as exc:
        raise not_found(task_id) if exc.status_code == 404 else exc from None
    if described.workflow_type != TASK_WORKFLOW:
        raise not_found(task_id)
    charter = await charter_for_run(ctx.pool, task_id, token.tenant)
    outcome = await _outcome(ctx, described)
    return await _view(ctx, task_id, described, charter, outcome)


async def _outcome(ctx: ApiContext, described: WorkflowExecutionDescription) -> TaskOutcome | None:
    if described.status != WorkflowExecutionStatus.COMPLETED:
        return None
    handle = ctx.client.temporal.get_workflow_handle(described.id, result_type=TaskOutcome)
    async with upstream("task", ctx.timeout_s):
        outcome: TaskOutcome = await handle.result()
    return outcome


async def _view(
    ctx: ApiContext,
    task_id: str,
    described: WorkflowExecutionDescription,
    charter: list[CharterRow],
    outcome: TaskOutcome | None,
) -> TaskView:
    named = next((r for r in reversed(charter) if r.task_type is not None), None)
    status: TaskState
    if outcome is not None:
        status = outcome.status
    elif described.status is None or described.status == WorkflowExecutionStatus.RUNNING:
        status = "running"
    else:
        status = _ENDED.get(described.status, "failed")
    view = TaskView(
        task_id=task_id,
        status=status,
        task_type=outcome.task_type if outcome else named.task_type if named else None,
        boomer_ang_id=outcome.boomer_ang_id if outcome else named.boomer_ang_id if named else None,
        message=charter[-1].message if charter else "",
        started_at=described.start_time,
        finished_at=described.close_time,
    )
    if outcome is None or outcome.status != "completed":
        return view
    ledger = await ledger_for_run(ctx.pool, task_id)
    internal = {v for e in ledger.entries for v in (e.provider, e.model_name, e.gpu_type) if v}
    output = customer_output(dict(outcome.output))
    return view.model_copy(
        update={
            "output": output if isinstance(output, dict) else {},
            "summary": customer_summary(outcome.summary, internal),
            "execution_time_s": outcome.execution_time_s,
        }
    )
