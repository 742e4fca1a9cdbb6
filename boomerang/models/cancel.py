"""Cancelling a run (a pipeline or a standalone task): who asked, why, and the answer.

The same `CancelInput` goes through every front door (`boomerang cancel`,
`POST /runs/{run_id}/cancel`, `BoomerangClient.cancel`) to the run's `cancel` update.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# `CancelRecord.via` when the run was cancelled by Temporal itself (`temporal workflow
# cancel`, the UI's Cancel button): such a request names nobody.
VIA_TEMPORAL = "temporal"


class CancelInput(BaseModel):
    """The `cancel` update's argument: who cancels, and why (kept in the Ledger)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    by: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


class CancelRecord(BaseModel):
    """A cancellation the run took; `by` is None when Temporal's own cancel named nobody."""

    model_config = ConfigDict(frozen=True)

    by: str | None
    reason: str | None = None
    requested_at: datetime
    via: str = "update"


class CancelReceipt(BaseModel):
    """What a cancel request got: `applied` (the run is cancelled now), `duplicate` (it
    already was: nothing changed) or `pending` (no worker has taken it yet; Temporal
    keeps it and the run is cancelled when a worker runs)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    # The values of `ReceiptStatus` that a cancel can get (a Literal: no import cycle).
    status: Literal["applied", "duplicate", "pending"] = Field(description="applied | duplicate | pending")
    by: str | None = Field(default=None, description="Who cancelled (the first request, for a duplicate).")
    reason: str | None = None
    requested_at: datetime | None = None
