"""`BoomerangClient`: start pipelines, decide, read status, list what waits.

client = await BoomerangClient.connect(Settings())
run_id = await client.start_pipeline(PipelineInput(tenant="acme", project_id="p1", brief="..."))
await client.decide(run_id, DecisionInput(checkpoint="approve_founders_brief", approver="alice"))
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import secrets
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from boomerang.admission import admit
from boomerang.artifacts import ArtifactStore
from boomerang.connect import connect_temporal
from boomerang.constants import (
    CANCEL_UPDATE,
    PIPELINE_WORKFLOW,
    PROGRESS_QUERY,
    SA_STATUS,
    SA_TENANT,
    STATUS_QUERY,
    SWEEP_WORKFLOW,
    TASK_QUEUE,
    TASK_WORKFLOW,
)
from boomerang.decision_delivery import RunFinishedError, deliver
from boomerang.errors import (
    BoomerangError,
    CancelRefusedError,
    InvalidDecisionError,
    RunStuckError,
    RunUnresponsiveError,
    TaskFailedError,
    UnknownRunError,
)
from boomerang.gpu_runs import gpu_run_result, prepare_gpu_run, start_gpu_run
from boomerang.models.cancel import CancelInput, CancelReceipt, CancelRecord
from boomerang.models.decisions import (
    CheckpointView,
    DecisionInput,
    DecisionReceipt,
    PipelineResult,
    PipelineStatus,
    RunStatus,
)
from boomerang.models.gpu_runs import GpuRunInput, GpuRunOutcome, HotMode
from boomerang.models.pipeline import PipelineInput
from boomerang.models.sweeps import SweepInput, SweepProgress, SweepSpec
from boomerang.models.tasks import TaskInput, TaskOutcome
from boomerang.pipelines import startup_validation_pipeline
from boomerang.settings import Settings
from boomerang.snapshots import DEFAULT_MAX_BYTES
from boomerang.store import queries
from boomerang.store.charter import CharterRow
from boomerang.store.costs import CostReport, cost_report
from boomerang.store.integrity import VerifyReport, verify
from boomerang.store.queries import Pool
from boomerang.webhooks.urls import WebhookUrlPolicy
from modal_app.registry import Registry, load_registry, modules_from_env

_SLUG = re.compile(r"[^a-zA-Z0-9_.-]+")
R = TypeVar("R")
# How long a status query may take before history is asked whether the run is stuck.
_QUERY_PATIENCE_S = 1.0


class PendingApproval(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    tenant: str
    project_id: str
    checkpoint: CheckpointView


def new_run_id(project_id: str) -> str:
    return f"vp-{_SLUG.sub('-', project_id).strip('-')[:60] or 'run'}-{secrets.token_hex(4)}"


class BoomerangClient:
    """Runs through Temporal; records (Charter, Ledger, costs) through Postgres when given a pool."""

    def __init__(
        self,
        client: Client,
        *,
        task_queue: str = TASK_QUEUE,
        records: Pool | None = None,
        decide_wait_s: float = 10.0,
        webhook_policy: WebhookUrlPolicy | None = None,
        inbox_base_url: str | None = None,
    ) -> None:
        if decide_wait_s <= 0:
            raise ValueError(f"decide_wait_s must be positive, got {decide_wait_s}")
        self.temporal = client
        self._task_queue = task_queue
        # Runs started here link their notices and Temporal UI details to this inbox.
        self._inbox_base_url = inbox_base_url
        self._records = records
        # How long `decide` waits for a worker to take a decision before answering `pending`.
        self._decide_wait = timedelta(seconds=decide_wait_s)
        # Which webhook URLs a run may carry (boomerang/admission.py); production's by default.
        self._webhook_policy = webhook_policy or WebhookUrlPolicy()

    @property
    def task_queue(self) -> str:
        """The task queue this client starts runs on."""
        return self._task_queue

    @classmethod
    async def connect(cls, settings: Settings, *, records: Pool | None = None) -> BoomerangClient:
        return cls(
            await connect_temporal(settings),
            task_queue=settings.temporal_task_queue,
            records=records,
            webhook_policy=WebhookUrlPolicy.from_settings(settings),
            inbox_base_url=settings.inbox_base_url,
        )

    # -- records -------------------------------------------------------------------

    def _pool(self) -> Pool:
        if self._records is None:
            raise BoomerangError(
                "this client has no records pool: pass records=await open_pool(DATABASE_URL)"
            )
        return self._records

    async def charter(self, run_id: str, *, tenant: str) -> list[CharterRow]:
        """The run's Charter as `tenant` sees it (row-level security applies)."""
        return await queries.charter_for_run(self._pool(), run_id, tenant)

    async def ledger(self, run_id: str) -> queries.LedgerStatement:
        """Every Ledger row of the run, with costs and their total."""
        return await queries.ledger_for_run(self._pool(), run_id)

    async def verify_ledger(self, run_id: str | None = None) -> VerifyReport:
        """Recompute the hash chains (one run, or all); the report names the first break."""
        return await verify(self._pool(), run_id)

    async def cost(self, run_id: str) -> CostReport:
        return await cost_report(self._pool(), run_id)

    # -- runs ----------------------------------------------------------------------

    async def start_pipeline(self, inp: PipelineInput, *, run_id: str | None = None) -> str:
        """Start a run; without a spec it gets the default pipeline as it is now, in its
        input, so a later edit of the default never changes it while it runs."""
        admit(inp, self._webhook_policy)  # raises InputRefused naming the field
        if inp.spec is None:
            inp = inp.model_copy(update={"spec": startup_validation_pipeline()})
        if inp.inbox_url is None and self._inbox_base_url is not None:
            inp = inp.model_copy(update={"inbox_url": self._inbox_base_url})
        run_id = run_id or new_run_id(inp.project_id)
        await self.temporal.start_workflow(
            PIPELINE_WORKFLOW,
            inp,
            id=run_id,
            task_queue=self._task_queue,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(SA_TENANT, inp.tenant),
                    SearchAttributePair(SA_STATUS, RunStatus.RUNNING.value),
                ]
            ),
            static_summary=f"Validation pipeline · {inp.tenant} / {inp.project_id}",
            static_details=f"Brief: {inp.brief[:500]}",
            # A worker in this process on the queue takes the first workflow task in the
            # start reply; otherwise it starts as usual.
            request_eager_start=True,
        )
        return run_id

    def _handle(self, run_id: str) -> WorkflowHandle[object, PipelineResult]:
        return self.temporal.get_workflow_handle(run_id, result_type=PipelineResult)

    async def decide(
        self, run_id: str, decision: DecisionInput, *, wait_s: float | None = None
    ) -> DecisionReceipt:
        """Land a decision; raises `InvalidDecisionError` with the run's reason.

        Sent by the `decide` signal and answered by the `decision_outcome` query
        (boomerang/decision_delivery.py says why not by update). The decision gets a
        `decision_id` here if it has none, so that it can be sent again safely. When no
        worker answers in time (none running, all busy) the receipt says `pending`:
        Temporal keeps the signal and the run validates and applies it when a worker
        takes it; resending the same decision_id says what became of it. `wait_s`
        overrides the client's `decide_wait_s` for this call.
        """
        wait = self._decide_wait if wait_s is None else timedelta(seconds=wait_s)
        if decision.decision_id is None:
            decision = decision.model_copy(update={"decision_id": f"d-{secrets.token_hex(8)}"})
        try:
            return await deliver(self._handle(run_id), decision, wait_s=wait.total_seconds())
        except RunFinishedError:
            ended, _ = await self._how_it_ended(run_id)
            raise InvalidDecisionError(_finished_message(run_id, ended)) from None
        except RPCError as exc:
            raise _rpc_error(run_id, exc) from exc

    async def cancel(
        self, run_id: str, *, by: str, reason: str | None = None, wait_s: float | None = None
    ) -> CancelReceipt:
        """Cancel a pipeline or a standalone task, recording who and why.

        The receipt says `applied` once the run has taken it (in-flight compute is being
        stopped, open checkpoints are closed, the run ends `cancelled`), `duplicate` when it
        was already cancelled (nothing changes), or `pending` when no worker has taken it
        yet. Raises `CancelRefusedError` when the run finished otherwise, `UnknownRunError`
        when there is no such run, pydantic's `ValidationError` for a bad `by` or `reason`.
        """
        request = CancelInput(by=by, reason=reason)
        wait = self._decide_wait if wait_s is None else timedelta(seconds=wait_s)
        handle = self.temporal.get_workflow_handle(run_id)
        try:
            receipt: CancelReceipt = await _execute_update(
                handle, CANCEL_UPDATE, request, CancelReceipt, wait
            )
            return receipt
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            return CancelReceipt(run_id=run_id, status="pending", by=by, reason=reason)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise CancelRefusedError(
                cause.message if isinstance(cause, ApplicationError) else str(exc)
            ) from exc
        except RPCError as exc:
            if not _finished(exc):
                raise _rpc_error(run_id, exc) from exc
        ended, record = await self._how_it_ended(run_id)
        if ended != "cancelled":
            raise CancelRefusedError(f"run {run_id} has finished ({ended}); nothing to cancel")
        return CancelReceipt(
            run_id=run_id,
            status="duplicate",
            by=record.by if record else None,
            reason=record.reason if record else None,
            requested_at=record.requested_at if record else None,
        )

    async def _how_it_ended(self, run_id: str) -> tuple[str, CancelRecord | None]:
        """A closed run's final status (as `status` would say it) and its cancellation, if any."""
        handle = self.temporal.get_workflow_handle(run_id)
        try:
            described = await handle.describe()
            if described.status != WorkflowExecutionStatus.COMPLETED:
                state = described.status.name.lower() if described.status else "closed"
                return ("cancelled" if state == "canceled" else state.replace("_", " ")), None
            if described.workflow_type == TASK_WORKFLOW:
                task = await self.temporal.get_workflow_handle(run_id, result_type=TaskOutcome).result()
                return task.status, task.cancellation
            result = await self._handle(run_id).result()
        except RPCError as exc:
            raise _rpc_error(run_id, exc) from exc
        return result.status.value, result.cancellation

    async def status(self, run_id: str) -> PipelineStatus:
        """The run's `status` query; `RunStuckError` (one line) if it cannot make progress."""
        handle = self._handle(run_id)
        # No timeout of our own: after a worker dies, a query waits for its workflow
        # task to time out (10 s) before another worker answers.
        query = asyncio.ensure_future(handle.query(STATUS_QUERY, result_type=PipelineStatus))
        try:
            # A query needs a workflow task that succeeds: on a run whose tasks keep failing
            # it would hang and time out with an opaque error. The answer usually comes at
            # once, so history is asked only while it does not (one RPC per status, not two).
            while not (await asyncio.wait({query}, timeout=_QUERY_PATIENCE_S))[0]:
                stuck = await self._failing_task(handle)
                if stuck is not None:
                    raise RunStuckError(f"run {run_id} cannot make progress: {stuck}")
            status: PipelineStatus = query.result()
            return status
        except RPCError as exc:
            with contextlib.suppress(RPCError):  # e.g. no such run: say so below
                stuck = await self._failing_task(handle)
                if stuck is not None:
                    raise RunStuckError(f"run {run_id} cannot make progress: {stuck}") from None
            if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                raise RunUnresponsiveError(
                    f"run {run_id} did not answer: is a worker polling task queue {self._task_queue!r}?"
                ) from None
            raise _rpc_error(run_id, exc) from exc
        finally:
            if not query.done():
                query.cancel()

    async def _failing_task(self, handle: WorkflowHandle[object, PipelineResult]) -> str | None:
        """Why the run's workflow task keeps failing, or None when it does not."""
        described = await handle.describe()
        pending = described.raw_description.pending_workflow_task
        if not described.raw_description.HasField("pending_workflow_task") or pending.attempt < 2:
            return None
        reply = await self.temporal.workflow_service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(
                namespace=self.temporal.namespace,
                execution=WorkflowExecution(workflow_id=handle.id),
                maximum_page_size=50,
            )
        )
        for event in reply.history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failure = event.workflow_task_failed_event_attributes.failure
                messages = [failure.message]
                if failure.HasField("cause"):
                    messages.append(failure.cause.message)
                return f"its workflow task fails ({pending.attempt} attempts): {_one_line(messages)}"
        return f"its workflow task has failed {pending.attempt} times"

    async def result(self, run_id: str) -> PipelineResult:
        return await self._handle(run_id).result()

    async def start_task(self, inp: TaskInput, *, task_id: str | None = None) -> str:
        """Start a `BoomerAngTask`; its id is also its run id when it runs alone."""
        admit(inp, self._webhook_policy)  # raises InputRefused naming the field
        task_id = task_id or f"task-{_SLUG.sub('-', inp.task_type)[:40]}-{secrets.token_hex(4)}"
        await self.temporal.start_workflow(
            TASK_WORKFLOW,
            inp,
            id=task_id,
            task_queue=self._task_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(SA_TENANT, inp.tenant)]),
            static_summary=f"{inp.boomer_ang_id or 'Boomer_Ang'} task · {inp.task_type} · {inp.tenant}",
            # A worker in this process on the queue takes the first workflow task in the start
            # reply (no trip through the server's queue); otherwise it starts as usual.
            request_eager_start=True,
        )
        return task_id

    async def task_result(self, task_id: str) -> TaskOutcome:
        """The task's outcome; raises `TaskFailedError` with the reason when it failed."""
        handle = self.temporal.get_workflow_handle(task_id, result_type=TaskOutcome)
        try:
            outcome: TaskOutcome = await handle.result()
        except WorkflowFailureError as exc:
            cause = exc.cause
            raise TaskFailedError(cause.message if isinstance(cause, ApplicationError) else str(exc)) from exc
        except RPCError as exc:
            raise _rpc_error(task_id, exc) from exc
        return outcome

    # -- GPU command runs (boomerang/gpu_runs.py) --------------------------------------

    async def gpu_exec(
        self,
        command: Sequence[str],
        *,
        workdir: Path = Path("."),
        gpu: str = "L4",
        timeout_s: float = 600,
        task_id: str = "adhoc",
        attempt: int = 1,
        env_names: Sequence[str] = (),
        hot_mode: HotMode = HotMode.AUTO,
        tenant: str = "local",
        store: ArtifactStore | None = None,
        max_snapshot_bytes: int = DEFAULT_MAX_BYTES,
        run_id: str | None = None,
    ) -> GpuRunOutcome:
        """Run `command` on a GPU against a snapshot of `workdir` and wait for its exit code.

        Bad input raises `GpuRunInputError` before anything is dispatched; a command that
        fails is an outcome with its exit code; `GpuRunFailedError` means Boomerang failed.
        """
        inp = await asyncio.to_thread(
            prepare_gpu_run, command, workdir=workdir, store=store, gpu=gpu, timeout_s=timeout_s,
            task_id=task_id, attempt=attempt, env_names=env_names, hot_mode=hot_mode, tenant=tenant,
            max_snapshot_bytes=max_snapshot_bytes,
        )  # fmt: skip
        return await self.gpu_run_result(await self.start_gpu_run(inp, run_id=run_id))

    async def start_gpu_run(self, inp: GpuRunInput, *, run_id: str | None = None) -> str:
        """Start a `GpuRun` from a prepared input (`boomerang.gpu_runs.prepare_gpu_run`); its id."""
        return await start_gpu_run(self.temporal, inp, task_queue=self._task_queue, run_id=run_id)

    async def gpu_run_result(self, run_id: str) -> GpuRunOutcome:
        """Wait for a GPU run to end: its outcome (exit code, tails, artifact URI)."""
        return await gpu_run_result(self.temporal, run_id)

    # -- sweeps (workflows/sweep.py) ------------------------------------------------------

    async def start_sweep(
        self,
        spec: SweepSpec,
        *,
        tenant: str,
        sweep_id: str | None = None,
        registry: Registry | None = None,
    ) -> str:
        """Check the sweep against the registry (SweepSpecError names every problem), then start it."""
        from boomerang.sweeps import resolve_sweep

        resolve_sweep(spec, registry or load_registry(modules_from_env()))
        sweep_id = sweep_id or f"sweep-{secrets.token_hex(6)}"
        await self.temporal.start_workflow(
            SWEEP_WORKFLOW,
            SweepInput(tenant=tenant, spec=spec),
            id=sweep_id,
            task_queue=self._task_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(SA_TENANT, tenant)]),
        )
        return sweep_id

    async def sweep_progress(self, sweep_id: str) -> SweepProgress:
        """Done, failed, running, pending (per batch and axis value), spend and ETA."""
        handle = self.temporal.get_workflow_handle(sweep_id)
        progress: SweepProgress = await handle.query(PROGRESS_QUERY, result_type=SweepProgress)
        return progress

    async def pending_approvals(self, tenant: str | None = None) -> list[PendingApproval]:
        query = (
            f"WorkflowType = '{PIPELINE_WORKFLOW}' AND ExecutionStatus = 'Running' "
            f"AND BoomerangStatus = '{RunStatus.AWAITING_APPROVAL.value}'"
        )
        if tenant is not None:
            query += f" AND BoomerangTenant = '{_quote(tenant)}'"
        found: list[PendingApproval] = []
        async for execution in self.temporal.list_workflows(query):
            try:
                status = await self.status(execution.id)
            except RunStuckError:
                continue  # nothing it says can be trusted; `status` names the failure
            found.extend(
                PendingApproval(
                    run_id=execution.id,
                    tenant=status.tenant,
                    project_id=status.project_id,
                    checkpoint=cp,
                )
                for cp in status.pending
            )
        return sorted(found, key=_deadline_order)


def _one_line(messages: list[str]) -> str:
    """Failure messages (a pydantic error spans lines) as one line, without doc links."""
    lines = [line.strip() for m in messages for line in m.splitlines()]
    kept = [
        re.sub(r"\s*\[type=[^\]]*\]", "", line)
        for line in lines
        if line and not line.startswith("For further")
    ]
    return ": ".join(kept)


def _deadline_order(p: PendingApproval) -> float:
    deadline = p.checkpoint.deadline
    return deadline.timestamp() if deadline else math.inf


def _finished_message(run_id: str, ended: str) -> str:
    return f"run {run_id} has finished ({ended}); it takes no more decisions"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


async def _execute_update(
    handle: WorkflowHandle[Any, Any], name: str, arg: BaseModel, result_type: type[R], wait: timedelta
) -> R:
    """`execute_update`, sent again when the workflow task that carried it failed (a worker
    lost mid-task, or one too busy to answer in time): the server then drops the update,
    and sending it again is safe (decisions carry their id; a second cancel is a duplicate)."""
    for attempt in range(3):
        try:
            result: R = await handle.execute_update(name, arg, result_type=result_type, rpc_timeout=wait)
            return result
        except RPCError as exc:
            if "unexpected workflow task failure" not in exc.message or attempt == 2:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")  # the loop returns or raises


def _finished(exc: RPCError) -> bool:
    """An update to a run that has already closed."""
    return exc.status == RPCStatusCode.NOT_FOUND and "already completed" in exc.message


def _rpc_error(run_id: str, exc: RPCError) -> Exception:
    if exc.status == RPCStatusCode.NOT_FOUND:
        if "already completed" in exc.message:
            return InvalidDecisionError(f"run {run_id} has finished; it takes no more decisions")
        return UnknownRunError(f"no run {run_id!r}")
    return exc
