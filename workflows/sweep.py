"""`Sweep`: one compute function (or specialist task type) over many items, durably.

At most `max_parallel` item calls are in flight; with `batch_by`, a batch starts only
when the one before it has finished. Items go out in chunks: a `run_sweep_chunk`
activity carries consecutive items of one batch and runs `lanes` of them at a time,
the lanes of all chunks in flight never more than the window (sizes:
`workflows.sweep_chunking`). Each item's attempts are in the Ledger and its row is
written once; the workflow keeps counts only. Sweeps whose history began with one
`run_sweep_item` activity per item (before `workflow.patched("sweep-chunks")`), and
backends that own the heartbeat, keep that path. Every `items_per_run` items the run
drains its window and continues as new with a compact `SweepCarry`, so the history
stays bounded whatever the sweep's size (README: Sweeps). A cost cap becomes the
`approve_budget_increase` checkpoint, decided through the same `decide` update and
signals as a pipeline's. Workflow code only: no I/O.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.sweep_results import PlanSweepInput, SpendInput, SweepActivities, SweepResolved
    from boomerang.constants import (
        CANCEL_UPDATE,
        PROGRESS_QUERY,
        SA_AWAITING,
        SA_PHASE,
        SA_STATUS,
        SA_TENANT,
        SWEEP_WORKFLOW,
    )
    from boomerang.models.cancel import CancelReceipt
    from boomerang.models.events import EventKind
    from boomerang.models.pipeline import (
        BUDGET_CHECKPOINT,
        Decision,
        PhaseSpec,
        PipelineSpec,
        budget_checkpoint,
    )
    from boomerang.models.sweeps import (
        AxisCount,
        BatchCount,
        CancelledItemsInput,
        SweepCarry,
        SweepChunkInput,
        SweepChunkOutcome,
        SweepInput,
        SweepItemInput,
        SweepItemOutcome,
        SweepProgress,
        SweepRowsInput,
        SweepState,
    )
    from workflows.approvals import ApprovalBook
    from workflows.cancellation import Cancellation
    from workflows.intake import DecisionIntake
    from workflows.recording import EventLog
    from workflows.sweep_chunking import BACKOFF_MAX_S, MAX_CHUNK_BYTES, chunk_shape, unfinished
    from workflows.sweep_plan import SweepPlan, SweepSpecError, batch_key

SWEEP_FAILED = "SweepFailed"
CHUNKS_PATCH = "sweep-chunks"
_QUICK = timedelta(seconds=60)
# A chunk's items retry inside it; these attempts are for chunks lost with their worker.
_CHUNK_ATTEMPTS = 3
# The book needs a spec; a sweep's only checkpoint is the floating budget one.
_BOOK_SPEC = PipelineSpec(name="sweep", phases=(PhaseSpec(name="sweep", title="Sweep", function="sweep"),))


class _NoBounds:
    def check(self, phase_index: int | None, decision: Decision, target_phase: str | int | None) -> None:
        return None


@workflow.defn(name=SWEEP_WORKFLOW)
class Sweep(DecisionIntake):
    # The cost checkpoint opens only when spend demands it: a decision sent before is refused.
    _hold_early_signals = False

    @workflow.init
    def __init__(self, inp: SweepInput) -> None:
        self._id = workflow.info().workflow_id
        self._inp = inp
        self._spec = inp.spec
        self._problem: str | None = None
        try:
            self._plan: SweepPlan | None = SweepPlan.of(inp.spec)
        except SweepSpecError as exc:
            self._plan, self._problem = None, str(exc)
        self._carry = inp.carry or self._first_carry()
        # Items handed out and not yet accounted: one per activity, or every item of the
        # chunks in flight (then at most `_lanes_used` of them are running a call).
        self._running: dict[int, SweepItemInput] = {}
        self._chunked = False
        self._lanes_used = 0
        # Chunks in flight: when each went out, its items and lanes (to size the next).
        self._chunks: dict[int, tuple[datetime, int, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._events = EventLog(
            run_id=self._id, tenant=inp.tenant, key_prefix=f"{self._id}/run-{self._carry.runs}"
        )
        self._cancellation = Cancellation(self._id)
        self._book = ApprovalBook(_BOOK_SPEC, {}, floating=(budget_checkpoint(),), rules=_NoBounds())
        self._state: SweepState = "running"
        self._resolved: SweepResolved | None = None

    def _first_carry(self) -> SweepCarry:
        plan = self._plan
        if plan is None:
            return SweepCarry()
        return SweepCarry(
            cap_usd=self._spec.max_cost_usd,
            batches=[BatchCount(key=k, total=n) for k, n in plan.batches()],
            axes={a: {v: [0, 0] for v in values} for a, values in plan.tracked_axes().items()},
            started_at=workflow.now().isoformat(),
        )

    # -- run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: SweepInput) -> SweepProgress:
        writer = self._events.start()
        self._cancellation.attach()
        try:
            return await self._run()
        except (asyncio.CancelledError, ActivityError) as exc:
            if not is_cancelled_exception(exc):
                raise
            return await self._cancelled()
        finally:
            writer.cancel()

    async def _run(self) -> SweepProgress:
        if self._plan is None:
            raise ApplicationError(
                f"sweep {self._id}: {self._problem}", type=SWEEP_FAILED, non_retryable=True
            )
        self._resolved = await workflow.execute_activity_method(
            SweepActivities.plan_sweep, PlanSweepInput(spec=self._spec), start_to_close_timeout=_QUICK
        )
        carry = self._carry
        if carry.runs == 1 and carry.cursor == 0:
            self._events.emit(
                EventKind.SWEEP_STARTED,
                phase="sweep",
                task_type=self._spec.task_type,
                message=f"Sweep of {self._plan.total} items started",
                details={"function": self._resolved.function, "items": self._plan.total},
            )
        self._publish()
        end = min(self._plan.total, carry.cursor + self._spec.items_per_run)
        await self._dispatch(end)
        if carry.stopped_reason is None and carry.cursor < self._plan.total:
            self._events.emit(
                EventKind.SWEEP_PROGRESS,
                phase="sweep",
                message=f"{carry.done + carry.failed} of {self._plan.total} items finished",
                details={"done": carry.done, "failed": carry.failed, "run": carry.runs},
            )
            await self._events.flush()
            await workflow.wait_condition(workflow.all_handlers_finished)
            carry.runs += 1
            workflow.continue_as_new(SweepInput(tenant=self._inp.tenant, spec=self._spec, carry=carry))
        return await self._finish()

    async def _dispatch(self, end: int) -> None:
        assert self._resolved is not None
        # Sweeps whose history began before chunks replay (and go on) item by item.
        self._chunked = workflow.patched(CHUNKS_PATCH) and self._resolved.chunked
        if self._chunked:
            await self._dispatch_chunks(end)
        else:
            await self._dispatch_items(end)

    async def _dispatch_chunks(self, end: int) -> None:
        assert self._plan is not None
        plan, carry, window = self._plan, self._carry, self._spec.max_parallel
        previous_batch: str | None = None
        position = carry.cursor
        while position < end and carry.stopped_reason is None:
            batch = plan.batch_of(plan.index_at(position))
            if position > carry.cursor and batch != previous_batch:
                await workflow.wait_condition(lambda: not self._running)  # batches never overlap
            previous_batch = batch
            await workflow.wait_condition(lambda: self._lanes_used < window)
            await self._cost_gate()
            if carry.stopped_reason is not None:
                break
            lanes, size = self._next_chunk(position, end)
            items = self._chunk_items(position, size, batch)
            lanes, size = min(lanes, len(items)), len(items)
            self._running.update((item.index, item) for item in items)
            self._lanes_used += lanes
            self._chunks[position] = (workflow.now(), size, lanes)
            self._tasks.append(asyncio.create_task(self._run_chunk(position, items, lanes)))
            position += size
            self._publish()
        await workflow.wait_condition(lambda: not self._running)
        await asyncio.gather(*self._tasks)
        self._tasks.clear()
        carry.cursor = position

    def _chunk_items(self, position: int, size: int, batch: str | None) -> list[SweepItemInput]:
        """The items from `position` on, `size` of them or fewer if they pass `MAX_CHUNK_BYTES`."""
        assert self._plan is not None
        items: list[SweepItemInput] = []
        budget = MAX_CHUNK_BYTES
        for p in range(position, position + size):
            item = self._item(self._plan.index_at(p), batch)
            # params and payload travel both; the payload holds the params (and `base`).
            budget -= 2 * len(json.dumps(item.payload)) + 300
            if items and budget < 0:
                break
            items.append(item)
        return items

    def _next_chunk(self, position: int, end: int) -> tuple[int, int]:
        """(lanes, items) of the chunk that starts at `position` (workflows.sweep_chunking)."""
        assert self._plan is not None
        carry, window, now = self._carry, self._spec.max_parallel, workflow.now()
        mean_s = carry.seconds_sum / carry.seconds_n if carry.seconds_n else self._spec.expected_seconds
        return chunk_shape(
            window=window,
            free=window - self._lanes_used,
            mean_s=mean_s,
            left=min(end, self._plan.batch_end(position)) - position,
            in_flight=sum(
                unfinished(n, k, (now - at).total_seconds(), mean_s) for at, n, k in self._chunks.values()
            ),
            one_round=self._spec.on_item_failure == "stop",
        )

    async def _run_chunk(self, position: int, items: list[SweepItemInput], lanes: int) -> None:
        rounds = -(-len(items) // lanes)
        per_item = max(i.timeout_s for i in items) + BACKOFF_MAX_S
        try:
            result = await workflow.execute_activity_method(
                SweepActivities.run_sweep_chunk,
                SweepChunkInput(
                    sweep_id=self._id,
                    tenant=self._inp.tenant,
                    items=items,
                    lanes=lanes,
                    heartbeat_every_s=self._spec.heartbeat_timeout_s / 3,
                    stop_on_failure=self._spec.on_item_failure == "stop",
                ),
                start_to_close_timeout=timedelta(seconds=rounds * items[0].max_attempts * per_item + 60),
                heartbeat_timeout=timedelta(seconds=self._spec.heartbeat_timeout_s),
                retry_policy=RetryPolicy(maximum_attempts=_CHUNK_ATTEMPTS),
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                return  # the cancel path reads what the chunk wrote
            # Every attempt lost: the items without a row fail; those with one keep it.
            lost = [item.model_copy(update={"error": f"lost: {exc.cause or exc}"}) for item in items]
            outcomes = await workflow.execute_activity_method(
                SweepActivities.end_sweep_items,
                CancelledItemsInput(sweep_id=self._id, tenant=self._inp.tenant, items=lost),
                start_to_close_timeout=_QUICK,
            )
            result = SweepChunkOutcome(outcomes=outcomes)
        except asyncio.CancelledError:
            return
        self._lanes_used -= lanes
        self._chunks.pop(position, None)
        for index in result.not_started:
            self._running.pop(index, None)
        for outcome in result.outcomes:
            item = self._running.pop(outcome.index, None)
            if item is not None:
                self._account(item, outcome)

    async def _dispatch_items(self, end: int) -> None:
        assert self._plan is not None
        plan, carry = self._plan, self._carry
        tasks = self._tasks
        previous_batch: str | None = None
        position = carry.cursor
        while position < end and carry.stopped_reason is None:
            index = plan.index_at(position)
            batch = plan.batch_of(index)
            if position > carry.cursor and batch != previous_batch:
                await workflow.wait_condition(lambda: not self._running)  # batches never overlap
            previous_batch = batch
            await workflow.wait_condition(lambda: len(self._running) < self._spec.max_parallel)
            await self._cost_gate()
            if carry.stopped_reason is not None:
                break
            item = self._item(index, batch)
            self._running[index] = item
            tasks.append(asyncio.create_task(self._run_item(item)))
            position += 1
            self._publish()
        await workflow.wait_condition(lambda: not self._running)
        await asyncio.gather(*tasks)
        tasks.clear()
        carry.cursor = position

    def _item(self, index: int, batch: str | None) -> SweepItemInput:
        assert self._plan is not None and self._resolved is not None
        function = self._plan.function_of(index) or self._resolved.function
        payload = self._plan.payload(index)
        if self._spec.task_type is not None:
            payload = {
                "run_id": self._id,
                "task_id": f"{self._id}/{index}",
                "boomer_ang_id": self._resolved.boomer_ang_id or "",
                "task_type": self._spec.task_type,
                "payload": payload,
            }
        return SweepItemInput(
            sweep_id=self._id,
            tenant=self._inp.tenant,
            index=index,
            function=function,
            params=self._plan.params(index),
            payload=payload,
            batch=batch,
            timeout_s=self._resolved.timeouts[function],
            heartbeat_every_s=self._spec.heartbeat_timeout_s / 3,
            max_attempts=self._spec.retries + 1,
            task_type=self._spec.task_type,
            boomer_ang_id=self._resolved.boomer_ang_id,
            inline_output_bytes=self._spec.inline_output_bytes,
        )

    async def _run_item(self, item: SweepItemInput) -> None:
        try:
            outcome = await workflow.execute_activity_method(
                SweepActivities.run_sweep_item,
                item,
                start_to_close_timeout=timedelta(seconds=item.timeout_s + 60),
                heartbeat_timeout=timedelta(seconds=self._spec.heartbeat_timeout_s),
                # The item's last attempt writes its failed row itself; two more are for
                # attempts lost with their worker, which write nothing.
                retry_policy=RetryPolicy(maximum_attempts=item.max_attempts + 2),
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                return  # the cancel path writes its row
            lost = item.model_copy(update={"error": f"lost: {exc.cause or exc}"})
            (outcome,) = await workflow.execute_activity_method(
                SweepActivities.end_sweep_items,
                CancelledItemsInput(sweep_id=self._id, tenant=self._inp.tenant, items=[lost]),
                start_to_close_timeout=_QUICK,
            )
        except asyncio.CancelledError:
            return
        self._running.pop(item.index, None)
        self._account(item, outcome)

    def _account(self, item: SweepItemInput, outcome: SweepItemOutcome) -> None:
        carry = self._carry
        failed = outcome.status != "succeeded"
        if failed:
            carry.failed += 1
            if self._spec.on_item_failure == "stop" and carry.stopped_reason is None:
                carry.stopped_reason = f"item {item.index} failed and on_item_failure is stop"
        else:
            carry.done += 1
            if outcome.seconds is not None:
                carry.seconds_sum += outcome.seconds
                carry.seconds_n += 1
        carry.spent_usd += outcome.cost_usd
        for axis, values in carry.axes.items():
            value = item.params.get(axis)
            counts = values.get(batch_key(value))
            if counts is not None:
                counts[1 if failed else 0] += 1
        for batch in carry.batches:
            if batch.key == item.batch:
                batch.failed += failed
                batch.done += not failed
                if batch.done + batch.failed == batch.total:
                    self._events.emit(
                        EventKind.SWEEP_BATCH_COMPLETED,
                        phase="sweep",
                        status="failed" if batch.failed else "ok",
                        message=f"Batch {batch.key}: {batch.done} of {batch.total} items succeeded",
                        details={"batch": batch.key, "done": batch.done, "failed": batch.failed},
                    )

    # -- the cost cap ---------------------------------------------------------------------

    def _remaining_estimate(self) -> Decimal:
        assert self._plan is not None and self._resolved is not None
        carry = self._carry
        left = self._plan.total - carry.done - carry.failed
        per_item = carry.spent_usd / carry.done if carry.done else self._resolved.per_item_usd
        return per_item * left

    async def _cost_gate(self) -> None:
        carry = self._carry
        if carry.cap_usd is None or carry.spent_usd + self._remaining_estimate() <= carry.cap_usd:
            return
        # The Ledger is the truth (it has failed and lost attempts too): confirm before stopping.
        carry.spent_usd = await workflow.execute_activity_method(
            SweepActivities.sweep_spend, SpendInput(sweep_id=self._id), start_to_close_timeout=_QUICK
        )
        while carry.cap_usd is not None and carry.spent_usd + self._remaining_estimate() > carry.cap_usd:
            await self._ask_for_more()
            if carry.stopped_reason is not None:
                return

    async def _ask_for_more(self) -> None:
        carry, spec = self._carry, budget_checkpoint()
        remaining = self._remaining_estimate()
        now = workflow.now()
        context: dict[str, Any] = {
            "spent_usd": str(carry.spent_usd),
            "remaining_estimate_usd": str(remaining),
            "max_cost_usd": str(carry.cap_usd),
            "next_step": "dispatch the remaining items",
        }
        self._book.open(
            BUDGET_CHECKPOINT, now=now, deadline=now + spec.timeout, phase="sweep", context=context
        )
        self._state = "awaiting_approval"
        self._publish()
        self._events.emit(
            EventKind.CHECKPOINT_OPENED,
            phase="sweep",
            checkpoint=BUDGET_CHECKPOINT,
            status="awaiting_approval",
            deadline=now + spec.timeout,
            message="The sweep waits for a budget increase",
            details=context,
        )
        try:
            await workflow.wait_condition(lambda: self._book.settled(BUDGET_CHECKPOINT), timeout=spec.timeout)
        except TimeoutError:
            self._book.expire(BUDGET_CHECKPOINT)
            carry.stopped_reason = "the budget checkpoint expired"
            return
        finally:
            self._state = "running"
        record = self._book.decision_for(BUDGET_CHECKPOINT)
        assert record is not None
        self._events.emit(
            EventKind.CHECKPOINT_DECIDED,
            phase="sweep",
            checkpoint=BUDGET_CHECKPOINT,
            decision=record.decision.value,
            approver=record.approver,
            message=f"Budget checkpoint decided: {record.decision.value}",
        )
        if record.decision is Decision.APPROVE:
            carry.cap_usd = record.budget_usd or carry.spent_usd + remaining
        else:
            carry.stopped_reason = f"the budget increase was rejected by {record.approver}"
        self._publish()

    # -- ending ---------------------------------------------------------------------------

    async def _finish(self) -> SweepProgress:
        carry = self._carry
        if carry.stopped_reason is not None:
            self._state = "stopped"
            kind, message = EventKind.SWEEP_STOPPED, "The sweep stopped before all items ran"
        else:
            self._state = "completed"
            kind, message = EventKind.SWEEP_COMPLETED, "The sweep finished"
        self._events.emit(
            kind,
            phase="sweep",
            status=self._state,
            message=message,
            details={"done": carry.done, "failed": carry.failed, "reason": carry.stopped_reason},
        )
        self._publish()
        await self._events.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    async def _cancelled(self) -> SweepProgress:
        details = self._cancellation.ledger_details()
        self._cancellation.taken()
        self._state = "cancelled"
        self._book.cancel_open()
        in_flight = list(self._running.values())
        # Cancel the item activities (their compute killed or its call cancelled, the attempt
        # costed as cancelled) and wait until each has stopped.
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if in_flight and self._chunked:
            # A cancelled chunk wrote rows for the items it had started; the rest never ran.
            outcomes = await workflow.execute_activity_method(
                SweepActivities.sweep_item_rows,
                SweepRowsInput(sweep_id=self._id, indices=[item.index for item in in_flight]),
                start_to_close_timeout=_QUICK,
            )
        elif in_flight:
            outcomes = await workflow.execute_activity_method(
                SweepActivities.end_sweep_items,
                CancelledItemsInput(sweep_id=self._id, tenant=self._inp.tenant, items=in_flight),
                start_to_close_timeout=_QUICK,
            )
        else:
            outcomes = []
        for outcome in outcomes:
            item = self._running.pop(outcome.index, None)
            if item is not None:
                if outcome.status == "cancelled":
                    self._carry.cancelled += 1
                else:
                    self._account(item, outcome)
        self._running.clear()
        self._lanes_used = 0
        self._chunks.clear()
        self._events.emit(
            EventKind.SWEEP_CANCELLED,
            phase="sweep",
            status="cancelled",
            message="The sweep was cancelled",
            details=details,
        )
        self._publish()
        await self._events.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    # -- what it tells the outside ----------------------------------------------------------

    def _publish(self) -> None:
        awaiting = self._book.awaiting()
        batch = next((b.key for b in self._carry.batches if b.done + b.failed < b.total), None)
        workflow.upsert_search_attributes(
            [
                SA_STATUS.value_set(self._state),
                SA_TENANT.value_set(self._inp.tenant),
                SA_PHASE.value_set(f"sweep:{batch}" if batch else "sweep"),
                SA_AWAITING.value_set(awaiting) if awaiting else SA_AWAITING.value_unset(),
            ]
        )

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> SweepProgress:
        carry, plan = self._carry, self._plan
        total = plan.total if plan else 0
        running = min(len(self._running), self._lanes_used) if self._chunked else len(self._running)
        finished = carry.done + carry.failed + carry.cancelled
        eta = None
        if carry.seconds_n and self._state == "running":
            mean = carry.seconds_sum / carry.seconds_n
            eta = (total - finished) * mean / max(1, min(self._spec.max_parallel, total - finished or 1))
        return SweepProgress(
            sweep_id=self._id,
            status=self._state,
            tenant=self._inp.tenant,
            function=self._resolved.function if self._resolved else (self._spec.function or ""),
            total=total,
            done=carry.done,
            failed=carry.failed,
            cancelled=carry.cancelled,
            running=running,
            pending=max(0, total - finished - running),
            spent_usd=carry.spent_usd,
            max_cost_usd=carry.cap_usd,
            estimate_usd=carry.spent_usd + self._remaining_estimate() if self._resolved else None,
            eta_seconds=eta,
            batches=[b.model_copy() for b in carry.batches],
            axes={
                a: [AxisCount(value=v, done=c[0], failed=c[1]) for v, c in values.items()]
                for a, values in carry.axes.items()
            },
            awaiting=self._book.awaiting(),
            runs=carry.runs,
            reason=carry.stopped_reason or self._problem,
        )

    # -- people: decisions come through DecisionIntake; cancel ------------------------------

    @workflow.update(name=CANCEL_UPDATE)
    async def cancel(self, payload: Any) -> CancelReceipt:
        inp = self._cancellation.validate(payload, ended=self._ended())
        if not self._cancellation.request(inp):
            return self._cancellation.receipt("duplicate")
        await workflow.wait_condition(lambda: self._state not in ("running", "awaiting_approval"))
        return self._cancellation.receipt("applied")

    @cancel.validator
    def _validate_cancel(self, payload: Any) -> None:
        self._cancellation.validate(payload, ended=self._ended())

    def _ended(self) -> str | None:
        return self._state if self._state in ("completed", "stopped", "failed") else None
