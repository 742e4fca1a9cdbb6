"""A sweep item's compute call and its `sweep_results` row, shared by both dispatch paths
(one activity per item, `activities.sweep_results`; a chunk of items, `activities.sweep_chunks`)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from boomerang.artifacts import ArtifactStore
from boomerang.models.sweeps import SweepItemInput, SweepItemOutcome, SweepResult
from boomerang.models.tasks import Attribution, DispatchInput, DispatchOutcome


def dispatch_input(item: SweepItemInput) -> DispatchInput:
    return DispatchInput(
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


def item_row(
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


async def succeeded_row(
    item: SweepItemInput, outcome: DispatchOutcome, attempts: int, artifacts: ArtifactStore
) -> SweepResult:
    """The row of a call that succeeded; an output over `inline_output_bytes` goes to `artifacts`."""
    result = outcome.result
    output, uri = dict(result.output), None
    encoded = json.dumps(output).encode()
    if len(encoded) > item.inline_output_bytes:
        key = f"sweeps/{item.sweep_id}/item-{item.index:06d}.json"
        uri = await asyncio.to_thread(artifacts.put, key, encoded)
    row = item_row(
        item, "succeeded", attempts=attempts, cost=outcome.cost.total_cost, seconds=result.execution_time_s
    )
    return row.model_copy(update={"output": None if uri else output, "artifact_uri": uri})


def outcome_of(row: SweepResult) -> SweepItemOutcome:
    return SweepItemOutcome(
        index=row.item_index, status=row.status, cost_usd=row.cost_usd, seconds=row.seconds
    )
