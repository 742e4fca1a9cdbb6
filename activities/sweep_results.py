"""Sweep items: run one (dispatch + cost every attempt) and write its row exactly once.

`run_item` first looks for the item's row: a retry after the row was written (the
worker died before Temporal heard back) returns that row and runs nothing, so an item
that succeeded is never run again. Otherwise it dispatches through the `Dispatcher`
(every attempt a Ledger `compute_attempt` row, killed attempts settled by the next),
puts a large output in the artifact store, and inserts the row. A failure is retried
by Temporal until the item's last attempt, which writes the failed row itself.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.budget import CostReader
from activities.dispatch import Dispatcher
from boomerang.artifacts import ArtifactStore
from boomerang.models.sweeps import (
    CancelledItemsInput,
    SweepItemInput,
    SweepItemOutcome,
    SweepResult,
    SweepSpec,
)
from boomerang.models.tasks import Attribution, DispatchInput
from boomerang.pricing import PriceTable
from boomerang.store.sweeps import SweepResults
from boomerang.sweeps import per_item_estimate, resolve_sweep
from modal_app.registry import Registry
from workflows.sweep_plan import SweepSpecError

INVALID_SWEEP = "InvalidSweep"


class PlanSweepInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    spec: SweepSpec


class SweepResolved(BaseModel):
    model_config = ConfigDict(frozen=True)

    function: str
    timeouts: dict[str, float]
    boomer_ang_id: str | None = None
    per_item_usd: Decimal


class SpendInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    sweep_id: str


def _outcome(row: SweepResult) -> SweepItemOutcome:
    return SweepItemOutcome(
        index=row.item_index, status=row.status, cost_usd=row.cost_usd, seconds=row.seconds
    )


class SweepActivities:
    def __init__(
        self,
        results: SweepResults,
        artifacts: ArtifactStore,
        dispatcher: Dispatcher,
        registry: Registry,
        prices: PriceTable,
        costs: CostReader,
    ) -> None:
        self._results = results
        self._artifacts = artifacts
        self._dispatcher = dispatcher
        self._registry = registry
        self._prices = prices
        self._costs = costs

    @property
    def activities(self) -> list[object]:
        return [self.plan_sweep, self.run_sweep_item, self.end_sweep_items, self.sweep_spend]

    @activity.defn(name="plan_sweep")
    async def plan_sweep(self, inp: PlanSweepInput) -> SweepResolved:
        try:
            resolved = resolve_sweep(inp.spec, self._registry)
        except SweepSpecError as exc:
            raise ApplicationError(str(exc), type=INVALID_SWEEP, non_retryable=True) from None
        return SweepResolved(
            function=resolved.function,
            timeouts={n: fn.timeout_s for n, fn in resolved.functions.items()},
            boomer_ang_id=resolved.boomer_ang_id,
            per_item_usd=per_item_estimate(resolved, self._prices),
        )

    @activity.defn(name="run_sweep_item")
    async def run_sweep_item(self, item: SweepItemInput) -> SweepItemOutcome:
        stored = await self._results.get(item.sweep_id, item.index)
        if stored is not None:
            return _outcome(stored)
        attempt = activity.info().attempt
        try:
            outcome = await self._dispatcher.run(
                DispatchInput(
                    function=item.function,
                    payload=item.payload,
                    timeout_s=item.timeout_s,
                    heartbeat_every_s=item.heartbeat_every_s,
                    attribution=Attribution(
                        run_id=item.sweep_id,
                        tenant=item.tenant,
                        phase=item.batch,
                        boomer_ang_id=item.boomer_ang_id,
                        task_type=item.task_type,
                    ),
                )
            )
        except ApplicationError as exc:
            if not exc.non_retryable and attempt < item.max_attempts:
                raise
            row = self._row(item, "failed", error=f"{exc.type}: {exc}", attempts=attempt)
            return _outcome(await self._results.record(item.tenant, row))
        result = outcome.result
        output, uri = dict(result.output), None
        encoded = json.dumps(output).encode()
        if len(encoded) > item.inline_output_bytes:
            key = f"sweeps/{item.sweep_id}/item-{item.index:06d}.json"
            uri = await asyncio.to_thread(self._artifacts.put, key, encoded)
            output = {}
        row = self._row(
            item,
            "succeeded",
            attempts=attempt,
            cost=outcome.cost.total_cost,
            seconds=result.execution_time_s,
        ).model_copy(update={"output": None if uri else output, "artifact_uri": uri})
        return _outcome(await self._results.record(item.tenant, row))

    @activity.defn(name="end_sweep_items")
    async def end_sweep_items(self, inp: CancelledItemsInput) -> list[SweepItemOutcome]:
        """Rows for items that ended without their activity writing one (cancelled, or lost)."""
        out = []
        for item in inp.items:
            status = "failed" if item.error else "cancelled"
            row = self._row(item, status, error=item.error, attempts=0)
            out.append(_outcome(await self._results.record(inp.tenant, row)))
        return out

    @activity.defn(name="sweep_spend")
    async def sweep_spend(self, inp: SpendInput) -> Decimal:
        """What the sweep has spent so far, from the Ledger (every attempt, retries included)."""
        return await self._costs.cost_to_date(inp.sweep_id)

    @staticmethod
    def _row(
        item: SweepItemInput,
        status: str,
        *,
        error: str | None = None,
        attempts: int,
        cost: Decimal = Decimal(0),
        seconds: float | None = None,
    ) -> SweepResult:
        return SweepResult.model_validate(
            {
                "sweep_id": item.sweep_id,
                "item_index": item.index,
                "batch": item.batch,
                "params": item.params,
                "status": status,
                "error": error,
                "cost_usd": cost,
                "attempts": attempts,
                "seconds": seconds,
            }
        )
