"""The fault suite: workers SIGKILLed at random points, Temporal restarted, PostgreSQL stopped.

One round on a stack of its own (`tests/faults.py`): three pipelines run to the end
while the faults land in a random order at random moments (the seed is printed, and
BOOMERANG_FAULT_SEED replays it). Nothing may be lost or doubled: every decision
recorded once, the Charter and the Ledger hold each event once, `ledger verify` is
clean and every compute attempt has its one costed row. `bench/soak_faults.py` runs
many rounds.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from tests.faults import FaultStack, fault_round
from tests.helpers import CHECKPOINTS

RUNS = 3


async def test_no_decision_lost_and_no_row_doubled_under_faults(tmp_path: Path) -> None:
    seed = int(os.environ.get("BOOMERANG_FAULT_SEED") or random.randrange(1 << 32))
    print(f"fault seed {seed}")
    async with FaultStack.started(tmp_path) as stack:
        # Decisions the client's way (a query, the `decide` signal, a query): the bare
        # `decide` update can write a history that does not replay after a workflow task
        # timed out on a starved worker (boomerang/decision_delivery.py says why).
        counts = await fault_round(
            stack, runs=RUNS, kills=2, restart_temporal=True, postgres_down_s=2, rng=random.Random(seed),
            via="client",
        )  # fmt: skip
    print(counts)
    assert counts.problems == [], f"seed {seed}"
    assert (counts.kills, counts.temporal_restarts, counts.postgres_outages) == (2, 1, 1)
    assert counts.completed == RUNS
    assert counts.decisions_recorded == RUNS * len(CHECKPOINTS) >= counts.decisions_sent
    assert counts.attempts > 0 and counts.verify_rows == counts.ledger_rows
    assert counts.replay_failures == 0
