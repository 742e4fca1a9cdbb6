"""Sweep activities: plan, run items (a chunk at a time, or one), rows, spend.

`run_sweep_chunk` (activities.sweep_chunks) runs consecutive items in one activity.
`run_sweep_item` is the one-item path: sweeps whose history started before chunks, and
backends that own the heartbeat. It first looks for the item's row: a retry after the
row was written (the worker died before Temporal heard back) returns that row and runs
nothing, so an item that succeeded is never run again. Otherwise it dispatches through
the `Dispatcher` (every attempt a Ledger `compute_attempt` row, killed attempts settled
by the next), puts a large output in the artifact store, and inserts the row. A failure
is retried by Temporal until the item's last attempt, which writes the failed row itself.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.budget import CostReader
from activities.dispatch import Dispatcher
from activities.group_commit import GroupCommit, LingeringSink
from activities.sweep_chunks import COMMIT_LINGER_S, ChunkBeat, ChunkRun, RowCommit
from activities.sweep_rows import dispatch_input, item_row, outcome_of, succeeded_row
from boomerang.artifacts import ArtifactStore
from boomerang.models.sweeps import (
    CancelledItemsInput,
    SweepChunkInput,
    SweepChunkOutcome,
    SweepItemInput,
    SweepItemOutcome,
    SweepResult,
    SweepRowsInput,
    SweepSpec,
)
from boomerang.pricing import PriceTable
from boomerang.store.errors import is_outage
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
    # Whether items may run in chunks (`run_sweep_chunk`); False for a backend that owns the
    # heartbeat, and in histories recorded before chunks.
    chunked: bool = False


class SpendInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    sweep_id: str


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
        # Shared by every chunk on this worker, so their rows share commits.
        self._chunk_dispatcher = dispatcher.rewired(
            events=LingeringSink(dispatcher.events, linger_s=COMMIT_LINGER_S)
        )
        self._rows: RowCommit = GroupCommit(
            self._write_rows, linger_s=COMMIT_LINGER_S, isolate=lambda exc: not is_outage(exc)
        )

    async def _write_rows(self, key: tuple[str, str], rows: list[SweepResult]) -> list[SweepResult]:
        return await self._results.record_many(key[0], rows)

    @property
    def activities(self) -> list[object]:
        return [
            self.plan_sweep,
            self.run_sweep_item,
            self.run_sweep_chunk,
            self.sweep_item_rows,
            self.end_sweep_items,
            self.sweep_spend,
        ]

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
            chunked=not self._dispatcher.heartbeats_itself,
        )

    @activity.defn(name="run_sweep_item")
    async def run_sweep_item(self, item: SweepItemInput) -> SweepItemOutcome:
        """One item per activity: sweeps started before chunks, and backends that own the
        heartbeat (Modal's call checkpoint cannot be shared by a chunk's items)."""
        stored = await self._results.get(item.sweep_id, item.index)
        if stored is not None:
            return outcome_of(stored)
        attempt = activity.info().attempt
        try:
            outcome = await self._dispatcher.run(dispatch_input(item))
        except ApplicationError as exc:
            if not exc.non_retryable and attempt < item.max_attempts:
                raise
            row = item_row(item, "failed", error=f"{exc.type}: {exc}", attempts=attempt)
            return outcome_of(await self._results.record(item.tenant, row))
        row = await succeeded_row(item, outcome, attempt, self._artifacts)
        return outcome_of(await self._results.record(item.tenant, row))

    @activity.defn(name="run_sweep_chunk")
    async def run_sweep_chunk(self, inp: SweepChunkInput) -> SweepChunkOutcome:
        if self._dispatcher.heartbeats_itself:
            raise ApplicationError(
                "this worker's compute backend owns the heartbeat: sweep items run one per activity",
                type=INVALID_SWEEP,
                non_retryable=True,
            )
        stored = await self._results.get_many(inp.sweep_id, [item.index for item in inp.items])
        chunk = ChunkRun(inp, dispatcher=self._chunk_dispatcher, rows=self._rows, artifacts=self._artifacts)
        await chunk.resume(ChunkBeat.last(activity.info().heartbeat_details), stored)
        ran = await chunk.run([item for item in inp.items if item.index not in stored])
        rows = {row.item_index: row for row in (*stored.values(), *ran)}
        return SweepChunkOutcome(
            outcomes=[outcome_of(rows[i.index]) for i in inp.items if i.index in rows],
            not_started=chunk.not_started,
        )

    @activity.defn(name="sweep_item_rows")
    async def sweep_item_rows(self, inp: SweepRowsInput) -> list[SweepItemOutcome]:
        """The rows stored for `indices` (a cancelled chunk's items that ended)."""
        found = await self._results.get_many(inp.sweep_id, inp.indices)
        return [outcome_of(found[i]) for i in inp.indices if i in found]

    @activity.defn(name="end_sweep_items")
    async def end_sweep_items(self, inp: CancelledItemsInput) -> list[SweepItemOutcome]:
        """Rows for items that ended without their activity writing one (cancelled, or lost)."""
        out = []
        for item in inp.items:
            status = "failed" if item.error else "cancelled"
            row = item_row(item, status, error=item.error, attempts=0)
            out.append(outcome_of(await self._results.record(inp.tenant, row)))
        return out

    @activity.defn(name="sweep_spend")
    async def sweep_spend(self, inp: SpendInput) -> Decimal:
        """What the sweep has spent so far, from the Ledger (every attempt, retries included)."""
        return await self._costs.cost_to_date(inp.sweep_id)
