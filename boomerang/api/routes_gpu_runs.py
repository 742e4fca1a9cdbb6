"""GPU command runs over HTTP: start one (202 + run id), read how it ended.

`POST /gpu-runs` takes the command and a snapshot packed by `boomerang.snapshots.pack_snapshot`
(base64 of the .tar.gz; the body limit applies) and starts the same `GpuRun` that
`boomerang gpu exec` starts, for the token's tenant. Bad input is a 422 and nothing
is dispatched. `GET /gpu-runs/{run_id}` answers `running`, or the exit code, the
output tails, timings and the artifact URI; another tenant's run is a 404.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import WorkflowExecutionStatus

from boomerang.api.auth import Approver, Caller
from boomerang.api.deps import ApiContext, context, owned_run, upstream
from boomerang.api.schemas import RUN_ID_PATTERN, errors
from boomerang.artifacts import artifact_store_from_settings
from boomerang.gpu_runs import GpuRunInputError, input_from_archive
from boomerang.models.gpu_runs import GPU_RUN_WORKFLOW, GpuRunOutcome, HotMode

router = APIRouter(tags=["gpu-runs"])
Ctx = Annotated[ApiContext, Depends(context)]
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The id POST /gpu-runs returned.")]


class GpuRunRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command: list[str] = Field(min_length=1, description="argv, run without a shell")
    snapshot: str = Field(min_length=1, description="base64 of the worktree .tar.gz (pack_snapshot)")
    gpu: str = "L4"
    timeout_s: float = 600
    task_id: str = "adhoc"
    attempt: int = 1
    env: dict[str, str] = Field(default_factory=dict, description="passed to the command, never recorded")
    hot_mode: HotMode = HotMode.AUTO


class GpuRunAccepted(BaseModel):
    run_id: str
    status_url: str


class GpuRunView(BaseModel):
    run_id: str
    status: Literal["running", "completed", "failed", "cancelled"]
    outcome: GpuRunOutcome | None = None


@router.post(
    "/gpu-runs", status_code=202, response_model=GpuRunAccepted, responses=errors(401, 403, 422, 503, 504)
)
async def start_gpu_run(body: GpuRunRequest, token: Approver, ctx: Ctx, response: Response) -> GpuRunAccepted:
    """Start a command on a GPU against the snapshot; poll `status_url` for its exit code."""
    try:
        archive = base64.b64decode(body.snapshot, validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII string (no base64 either)
        raise HTTPException(422, "snapshot: not base64") from None
    try:
        inp = input_from_archive(
            archive,
            store=artifact_store_from_settings(ctx.settings),
            max_snapshot_bytes=ctx.settings.gpu_snapshot_max_bytes,
            **body.model_dump(exclude={"snapshot", "env", "command"}),
            env=body.env,
            tenant=token.tenant,
            command=tuple(body.command),
        )
    except GpuRunInputError as exc:
        raise HTTPException(422, str(exc)) from None
    async with upstream("gpu run", ctx.timeout_s):
        run_id = await ctx.client.start_gpu_run(inp)
    response.headers["Location"] = f"/gpu-runs/{run_id}"
    return GpuRunAccepted(run_id=run_id, status_url=f"/gpu-runs/{run_id}")


@router.get("/gpu-runs/{run_id}", response_model=GpuRunView, responses=errors(401, 404, 503, 504))
async def gpu_run(run_id: RunId, token: Caller, ctx: Ctx) -> GpuRunView:
    """The run's status and, once it ended, its exit code, tails, timings and artifact URI."""
    described = await owned_run(ctx, run_id, token.tenant)
    if described.workflow_type != GPU_RUN_WORKFLOW:
        raise HTTPException(404, f"no GPU run {run_id!r}")
    if described.status == WorkflowExecutionStatus.RUNNING:
        return GpuRunView(run_id=run_id, status="running")
    if described.status == WorkflowExecutionStatus.COMPLETED:
        handle = ctx.client.temporal.get_workflow_handle(run_id, result_type=GpuRunOutcome)
        async with upstream("gpu run", ctx.timeout_s):
            outcome = GpuRunOutcome.model_validate(await handle.result())
        return GpuRunView(run_id=run_id, status=outcome.status, outcome=outcome)
    cancelled = described.status == WorkflowExecutionStatus.CANCELED
    return GpuRunView(run_id=run_id, status="cancelled" if cancelled else "failed")
