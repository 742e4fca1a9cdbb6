"""What crosses into and out of the `check_budget` activity."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class BudgetCheckInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    # The work about to be dispatched: a compute function, or a specialist task type.
    function: str | None = None
    task_type: str | None = None
    expected_seconds: float = Field(default=60, gt=0)


class BudgetCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    spent_usd: Decimal
    estimate_usd: Decimal
