"""The fault suite as a soak: many rounds of pipelines under SIGKILLs, Temporal and Postgres restarts.

    python -m bench.soak_faults [--runs 10] [--pipelines 5] [--kills 3] [--seed N]
                                [--via client|update|signal]

One dedicated stack (Temporal dev server on a SQLite file, embedded PostgreSQL, worker
processes) for all rounds; each round starts `--pipelines` pipelines and, at random
moments in a random order, SIGKILLs a worker `--kills` times, restarts the Temporal
server and stops PostgreSQL for 3 s, then audits every run (`tests/faults.py`): the
decisions recorded, the Charter and Ledger rows (each event once), `ledger verify`,
and one costed row per compute attempt. Prints each round's counts and the totals;
exits 1 if any problem was found.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

from tests.faults import VIAS, Counts, FaultStack, fault_round


async def main(*, runs: int, pipelines: int, kills: int, via: str, seed: int) -> Counts:
    rng = random.Random(seed)
    total = Counts()
    with tempfile.TemporaryDirectory(prefix="boomerang-soak-") as tmp:
        async with FaultStack.started(Path(tmp)) as stack:
            for n in range(1, runs + 1):
                counts = await fault_round(
                    stack,
                    runs=pipelines,
                    kills=kills,
                    restart_temporal=True,
                    postgres_down_s=3,
                    rng=rng,
                    via=via,
                )
                total.add(counts)
                print(f"round {n}: {_line(counts)}", flush=True)
    print(f"seed {seed}, decisions via {via}, {runs} rounds: {_line(total)}")
    for problem in total.problems:
        print(f"PROBLEM {problem}")
    return total


def _line(c: Counts) -> str:
    return (
        f"{c.completed}/{c.runs} runs completed, {c.kills} kills, {c.temporal_restarts} Temporal restarts, "
        f"{c.postgres_outages} Postgres outages; decisions {c.decisions_recorded} recorded "
        f"({c.decisions_sent} applied on first send); Charter {c.charter_rows} rows, Ledger "
        f"{c.ledger_rows} rows ({c.verify_rows} verified); {c.replay_failures} histories that do not "
        f"replay; {c.attempts} attempts costed "
        f"({c.lost_attempts} settled after a kill, {c.retried_phases} dispatches retried); "
        f"{len(c.problems)} problems; {c.seconds:.0f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="rounds of faults")
    parser.add_argument("--pipelines", type=int, default=5, help="pipelines per round")
    parser.add_argument("--kills", type=int, default=3, help="worker SIGKILLs per round")
    parser.add_argument("--via", choices=VIAS, default="client", help="how decisions are sent")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    found = asyncio.run(
        main(runs=args.runs, pipelines=args.pipelines, kills=args.kills, via=args.via, seed=seed)
    )
    sys.exit(1 if found.problems else 0)
