"""`anchor_ledger`: export every chain's head to a file outside the database.

Run on a cadence by the `AnchorLedger` workflow under a Temporal Schedule
(`boomerang ledger schedule-anchoring`), so a rewrite that keeps every hash
consistent is caught by the next `ledger verify`: the files hold the heads as
they were.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from boomerang.store.anchors import write_anchor
from boomerang.store.integrity import Pool, anchor


class AnchorResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    streams: int


class AnchorActivities:
    def __init__(self, pool: Pool, directory: Path) -> None:
        self._pool = pool
        self._directory = directory

    @property
    def activities(self) -> list[Any]:
        return [self.anchor_ledger]

    @activity.defn(name="anchor_ledger")
    async def anchor_ledger(self) -> AnchorResult:
        heads = await anchor(self._pool)
        path = await asyncio.to_thread(write_anchor, self._directory, heads)
        activity.logger.info("ledger anchored to %s (%d streams)", path, len(heads))
        return AnchorResult(path=str(path), streams=len(heads))
