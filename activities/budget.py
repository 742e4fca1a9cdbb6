"""How a run stands against its budget: spend so far (from the Ledger) and the next estimate."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from boomerang.models.budget import BudgetCheck, BudgetCheckInput
from boomerang.pricing import PriceTable, UnknownPriceError, estimate_function
from modal_app.registry import Registry
from modal_app.specialists import UnknownSpecialistError


class CostReader(Protocol):
    async def cost_to_date(self, run_id: str) -> Decimal: ...


class BudgetActivities:
    def __init__(self, costs: CostReader, prices: PriceTable, registry: Registry) -> None:
        self._costs = costs
        self._prices = prices
        self._registry = registry

    @activity.defn(name="check_budget")
    async def check_budget(self, inp: BudgetCheckInput) -> BudgetCheck:
        try:
            name = inp.function or self._registry.specialist_for(inp.task_type or "").function
            fn = self._registry.lookup(name)
            planned = estimate_function(self._prices, fn, seconds=inp.expected_seconds)
        except (UnknownSpecialistError, UnknownPriceError, LookupError) as exc:
            raise ApplicationError(str(exc), type="UnknownWork", non_retryable=True) from exc
        return BudgetCheck(
            spent_usd=await self._costs.cost_to_date(inp.run_id), estimate_usd=planned.total_cost
        )
