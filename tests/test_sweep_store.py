"""`sweep_results` written a chunk at a time (boomerang/store/sweeps.py): each row once, the
first one wins, one transaction for the lot."""

from __future__ import annotations

import uuid
from decimal import Decimal

from boomerang.models.sweeps import SweepResult
from boomerang.store.queries import Pool
from boomerang.store.sweeps import SweepResults


def _row(sweep_id: str, index: int, status: str = "succeeded", cost: str = "0") -> SweepResult:
    return SweepResult.model_validate(
        {"sweep_id": sweep_id, "item_index": index, "params": {"x": index}, "status": status,
         "output": {"y": index}, "cost_usd": Decimal(cost)}
    )  # fmt: skip


async def test_record_many_writes_each_row_once_and_returns_what_is_stored(store_pool: Pool) -> None:
    results, sweep_id = SweepResults(store_pool), f"sweep-{uuid.uuid4().hex[:8]}"
    await results.record("acme", _row(sweep_id, 1, "failed"))
    stored = await results.record_many(
        "acme",
        [
            _row(sweep_id, 0, cost="0.00000000001234"),  # rounded to the column's 10 places
            _row(sweep_id, 1),  # already there as failed: that row wins
            _row(sweep_id, 2),
            _row(sweep_id, 2, "cancelled"),  # the same item twice in one batch: the first wins
        ],
    )
    assert [(r.item_index, r.status) for r in stored] == [
        (0, "succeeded"),
        (1, "failed"),
        (2, "succeeded"),
        (2, "succeeded"),
    ]
    assert stored[0].cost_usd == Decimal("0.0000000000")
    assert await results.get_many(sweep_id, [0, 1, 2, 3]) == {r.item_index: r for r in stored[:3]}
    assert await results.counts(sweep_id) == {"succeeded": 2, "failed": 1}
    assert await results.record_many("acme", []) == []
