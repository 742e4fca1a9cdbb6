"""`GpuRun`: one command run on a GPU against a worktree snapshot (`boomerang gpu exec`).

prepare (artifact path, snapshot source) -> gpu_run_started -> dispatch to
`gpu_exec_<gpu>` (every attempt costed in the Ledger; a retried attempt re-attaches
to the same Modal call) -> collect (artifacts into the store, the telemetry line) ->
gpu_run_completed (Charter: the exit code; Ledger: timings, start, cost, artifact
URI) -> the function's warm policy learns of the run. A command that fails is a
completed run with its exit code; only Boomerang's own failures fail the workflow.
Cancelling the workflow cancels the dispatch, which kills the command.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.dispatch import DispatchActivities
    from activities.gpu_runs import GpuRunActivities
    from boomerang.models.events import EventKind
    from boomerang.models.gpu_runs import (
        GPU_RUN_WORKFLOW,
        CollectGpuRunInput,
        GpuRunInput,
        GpuRunOutcome,
        GpuRunRecord,
        PolicyObservation,
        PreparedGpuRun,
        PrepareGpuRunInput,
        ReportGpuRunInput,
    )
    from boomerang.models.tasks import Attribution, DispatchInput, DispatchOutcome
    from modal_app.gpu_exec import OVERHEAD_S, GpuExecRequest, function_name
    from workflows.recording import EventLog

GPU_RUN_FAILED = "GpuRunFailed"
TASK_TYPE = "gpu_exec"
_SHORT = timedelta(seconds=60)
_RETRY = RetryPolicy(maximum_attempts=5)


@workflow.defn(name=GPU_RUN_WORKFLOW)
class GpuRun:
    @workflow.run
    async def run(self, inp: GpuRunInput) -> GpuRunOutcome:
        run_id = workflow.info().workflow_id
        events = EventLog(run_id=run_id, tenant=inp.tenant, project_id=inp.task_id)
        writer = events.start()
        function = function_name(inp.gpu)
        prepared: PreparedGpuRun | None = None
        try:
            prepared = await workflow.execute_activity_method(
                GpuRunActivities.prepare_gpu_run,
                PrepareGpuRunInput(
                    run_id=run_id,
                    task_id=inp.task_id,
                    attempt=inp.attempt,
                    started_at=workflow.now(),
                    snapshot=inp.snapshot,
                ),
                start_to_close_timeout=_SHORT,
                retry_policy=_RETRY,
            )
            events.emit(
                EventKind.GPU_RUN_STARTED,
                status="running",
                task_type=TASK_TYPE,
                message="Command started.",
                attempt=inp.attempt,
                details={
                    "argv": list(inp.command),
                    "env_names": sorted(inp.env),
                    "gpu": inp.gpu,
                    "function": function,
                    "snapshot_sha256": inp.snapshot.sha256,
                    "snapshot_bytes": inp.snapshot.size,
                    "timeout_s": inp.timeout_s,
                    "hot_mode": inp.hot_mode.value,
                    "artifact_uri": prepared.artifact_uri,
                },
            )
            dispatched_at = workflow.now()
            outcome = await self._dispatch(inp, run_id, function, prepared)
            return await self._completed(inp, events, prepared, outcome, dispatched_at)
        except (asyncio.CancelledError, ActivityError) as exc:
            if not is_cancelled_exception(exc):
                await self._failed(inp, events, prepared, str(getattr(exc, "cause", None) or exc))
                raise ApplicationError(
                    f"GPU run {run_id} failed: {getattr(exc, 'cause', None) or exc}",
                    type=GPU_RUN_FAILED,
                    non_retryable=True,
                ) from exc
            await self._ended(inp, events, prepared, "cancelled", None)
            raise
        finally:
            writer.cancel()

    async def _dispatch(
        self, inp: GpuRunInput, run_id: str, function: str, prepared: PreparedGpuRun
    ) -> DispatchOutcome:
        request = GpuExecRequest(
            run_id=run_id,
            task_id=inp.task_id,
            attempt=inp.attempt,
            gpu=inp.gpu,
            command=inp.command,
            timeout_s=inp.timeout_s,
            env=inp.env,
            snapshot_sha256=inp.snapshot.sha256,
            snapshot_inline=inp.snapshot.inline,
            snapshot_url=prepared.snapshot_url,
            artifacts=prepared.target,
        )
        limit_s = inp.timeout_s + OVERHEAD_S
        return await workflow.execute_activity_method(
            DispatchActivities.dispatch,
            DispatchInput(
                function=function,
                payload=request.model_dump(mode="json"),
                timeout_s=limit_s,
                heartbeat_every_s=inp.heartbeat_timeout.total_seconds() / 3,
                attribution=Attribution(
                    run_id=run_id, tenant=inp.tenant, project_id=inp.task_id, task_type=TASK_TYPE
                ),
            ),
            start_to_close_timeout=timedelta(seconds=limit_s + 60),
            heartbeat_timeout=inp.heartbeat_timeout,
            retry_policy=RetryPolicy(maximum_attempts=inp.max_attempts),
        )

    async def _completed(
        self,
        inp: GpuRunInput,
        events: EventLog,
        prepared: PreparedGpuRun,
        outcome: DispatchOutcome,
        dispatched_at: datetime,
    ) -> GpuRunOutcome:
        result = outcome.result
        out = result.output
        exit_code = int(str(out["exit_code"]))
        timed_out = bool(out.get("timed_out"))
        queue_s = round(max(0.0, (result.started_at - dispatched_at).total_seconds()), 3)
        prepare_s = float(str(out.get("prepare_s") or 0))
        start_s = round(prepare_s + float(str(out.get("lock_wait_s") or 0)), 3)
        run_s = float(str(out.get("run_s") or 0))
        start = "cold" if result.cold_start else "warm"
        record = await self._collect(
            inp,
            prepared,
            "completed",
            exit_code=exit_code,
            timed_out=timed_out,
            start=start,
            queue_s=queue_s,
            start_s=start_s,
            run_s=run_s,
            cost=str(outcome.cost.total_cost),
        )
        what = "timed out" if timed_out else f"exited with code {exit_code}"
        events.emit(
            EventKind.GPU_RUN_COMPLETED,
            status="completed",
            task_type=TASK_TYPE,
            execution_time_s=run_s,
            message=f"Command {what}.",
            attempt=inp.attempt,
            details={
                "exit_code": exit_code,
                "timed_out": timed_out,
                "start": start,
                "queue_s": queue_s,
                "start_s": start_s,
                "run_s": run_s,
                "artifact_uri": record.artifact_uri,
                "dispatch_attempt": outcome.attempt,
                "device": result.device,
                "cost_usd": str(outcome.cost.total_cost),
            },
        )
        await workflow.execute_activity_method(
            GpuRunActivities.report_gpu_run,
            ReportGpuRunInput(
                function=function_name(inp.gpu),
                gpu=inp.gpu,
                observation=PolicyObservation(
                    run_id=workflow.info().workflow_id,
                    at=workflow.now(),
                    cold_start=result.cold_start,
                    start_s=round(queue_s + prepare_s, 3),
                    hot_mode=inp.hot_mode,
                ),
            ),
            start_to_close_timeout=_SHORT,
            retry_policy=_RETRY,
        )
        await events.flush()
        return GpuRunOutcome(
            run_id=workflow.info().workflow_id,
            task_id=inp.task_id,
            attempt=inp.attempt,
            gpu=inp.gpu,
            status="completed",
            exit_code=exit_code,
            timed_out=timed_out,
            stdout_tail=str(out.get("stdout_tail") or ""),
            stderr_tail=str(out.get("stderr_tail") or ""),
            artifact_uri=record.artifact_uri,
            cost_usd=outcome.cost.total_cost,
            start=start,
            queue_s=queue_s,
            run_s=run_s,
        )

    async def _failed(
        self, inp: GpuRunInput, events: EventLog, prepared: PreparedGpuRun | None, error: str
    ) -> None:
        await self._ended(inp, events, prepared, "failed", error)

    async def _ended(
        self,
        inp: GpuRunInput,
        events: EventLog,
        prepared: PreparedGpuRun | None,
        status: str,
        error: str | None,
    ) -> None:
        kind = EventKind.GPU_RUN_FAILED if status == "failed" else EventKind.GPU_RUN_CANCELLED
        events.emit(
            kind,
            status=status,
            task_type=TASK_TYPE,
            message="Command could not be run." if status == "failed" else "Command cancelled.",
            attempt=inp.attempt,
            details={"error": error} if error else {},
        )
        if prepared is not None:
            await self._collect(inp, prepared, status, error=error)
        await events.flush()

    async def _collect(
        self,
        inp: GpuRunInput,
        prepared: PreparedGpuRun,
        status: str,
        *,
        exit_code: int | None = None,
        timed_out: bool = False,
        start: str | None = None,
        queue_s: float | None = None,
        start_s: float | None = None,
        run_s: float | None = None,
        cost: str = "0",
        error: str | None = None,
    ) -> GpuRunRecord:
        record = GpuRunRecord.model_validate(
            {
                "run_id": workflow.info().workflow_id,
                "task_id": inp.task_id,
                "attempt": inp.attempt,
                "tenant": inp.tenant,
                "gpu": inp.gpu,
                "function": function_name(inp.gpu),
                "status": status,
                "start": start,
                "queue_s": queue_s,
                "start_s": start_s,
                "run_s": run_s,
                "exit_code": exit_code,
                "timed_out": timed_out,
                "cost_usd": cost,
                "artifact_uri": prepared.artifact_uri,
                "snapshot_sha256": inp.snapshot.sha256,
                "recorded_at": workflow.now(),
                "error": error,
            }
        )
        return await workflow.execute_activity_method(
            GpuRunActivities.collect_gpu_run,
            CollectGpuRunInput(prepared=prepared, record=record),
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=_RETRY,
        )
