"""Sweeps before they start: check a spec against the registry and estimate it.

    resolved = resolve_sweep(spec, registry)      # SweepSpecError names what is wrong
    estimate_sweep(resolved, prices)              # items, seconds, USD, wall time

Every front door (CLI, Python client, HTTP) calls `resolve_sweep` before starting
anything, so a bad sweep is refused with every bad item named and nothing started.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from boomerang.models.sweeps import SweepEstimate, SweepSpec
from boomerang.pricing import PriceTable, estimate_function
from modal_app.contracts import TaskRequest
from modal_app.functions import ComputeFunction
from modal_app.registry import Registry
from workflows.sweep_plan import SweepPlan, SweepSpecError

# Item problems listed in one error before "and N more".
SHOWN_PROBLEMS = 10


@dataclass(frozen=True)
class ResolvedSweep:
    spec: SweepSpec
    plan: SweepPlan
    function: str  # the sweep's function (the first variant's, with variant_axis)
    functions: dict[str, ComputeFunction[Any]]
    boomer_ang_id: str | None = None
    # With a task type: what the specialist says each item (a task's payload) must fit.
    payload_model: type[BaseModel] | None = None


def resolve_sweep(spec: SweepSpec, registry: Registry) -> ResolvedSweep:
    plan = SweepPlan.of(spec)
    boomer_ang_id, payload_model = None, None
    try:
        if spec.task_type is not None:
            specialist = registry.specialist_for(spec.task_type)
            boomer_ang_id, names = specialist.id, [specialist.function]
            payload_model = specialist.payload_model
        elif spec.variant_axis is not None:
            names = sorted({plan.function_of(i) or "" for i in range(plan.total)})
        else:
            names = [spec.function or ""]
        functions = {n: registry.lookup(n) for n in names}
    except LookupError as exc:
        raise SweepSpecError(str(exc.args[0] if exc.args else exc)) from None
    resolved = ResolvedSweep(spec, plan, names[0], functions, boomer_ang_id, payload_model)
    _check_payloads(resolved)
    return resolved


def item_request(resolved: ResolvedSweep, sweep_id: str, index: int) -> dict[str, Any]:
    """The JSON payload item `index` is called with."""
    payload = resolved.plan.payload(index)
    if resolved.spec.task_type is None:
        return payload
    return {
        "run_id": sweep_id,
        "task_id": f"{sweep_id}/{index}",
        "boomer_ang_id": resolved.boomer_ang_id or "",
        "task_type": resolved.spec.task_type,
        "payload": payload,
    }


def _check_payloads(resolved: ResolvedSweep) -> None:
    problems: list[str] = []
    count = 0
    for index in range(resolved.plan.total):
        name = resolved.plan.function_of(index) or resolved.function
        model = resolved.functions[name].request_model
        if resolved.spec.task_type is not None:
            model = TaskRequest
        request = item_request(resolved, "check", index)
        why = _misfit(model, request, "")
        if not why and resolved.payload_model is not None:
            why = _misfit(resolved.payload_model, request["payload"], "payload")
        if why:
            count += 1
            if len(problems) < SHOWN_PROBLEMS:
                problems.append(f"item {index}: {why}")
    if problems:
        more = f" (and {count - len(problems)} more)" if count > len(problems) else ""
        raise SweepSpecError(
            f"{count} of {resolved.plan.total} items do not fit {resolved.function}'s payload{more}: "
            + " | ".join(problems)
        )


def _misfit(model: type[BaseModel], value: Any, where: str) -> str:
    """Why `value` does not fit `model` ("" when it does), each field named from `where`."""
    try:
        model.model_validate(value)
    except ValidationError as exc:
        return "; ".join(
            f"{'.'.join(str(p) for p in (where, *e['loc']) if p != '') or 'item'}: {e['msg']}"
            for e in exc.errors()
        )
    return ""


def estimate_sweep(resolved: ResolvedSweep, prices: PriceTable) -> SweepEstimate:
    spec, plan = resolved.spec, resolved.plan
    seconds = spec.expected_seconds
    per_fn = {
        n: estimate_function(prices, fn, seconds=seconds).total_cost for n, fn in resolved.functions.items()
    }
    total_cost = Decimal(0)
    for index in range(plan.total) if len(per_fn) > 1 else ():
        total_cost += per_fn[plan.function_of(index) or resolved.function]
    if len(per_fn) == 1:
        total_cost = per_fn[resolved.function] * plan.total
    batches = plan.batches() or [("", plan.total)]
    rounds = sum(math.ceil(size / spec.max_parallel) for _, size in batches)
    return SweepEstimate(
        items=plan.total,
        batches=len(plan.batches()),
        functions=sorted(resolved.functions),
        expected_compute_seconds=seconds * plan.total,
        expected_cost_usd=total_cost,
        expected_wall_seconds=rounds * seconds,
        max_parallel=spec.max_parallel,
        price_table_version=prices.version,
    )


def per_item_estimate(resolved: ResolvedSweep, prices: PriceTable) -> Decimal:
    """The most expensive variant's expected cost of one item (the cap's guess before data)."""
    return max(
        estimate_function(prices, fn, seconds=resolved.spec.expected_seconds).total_cost
        for fn in resolved.functions.values()
    )
