"""Record the `Sweep` histories that tests/test_sweep_replay.py replays.

    .venv/bin/python -m tests.histories.record_sweep_history [--prefix sweep_items]

Starts the embedded stack (bench/stack.py: the Temporal dev server, PostgreSQL), runs
one small sweep of `sweep_simulate` (6 items, 2 batches, window 2, continue-as-new
after 4 items) with the workflow code as it is now, and writes the history of each of
its two runs beside this file (`<prefix>_first_run.json` ends in continue-as-new,
`<prefix>_last_run.json` in completion). `sweep_items_*` were recorded before sweeps
dispatched chunks (one `run_sweep_item` activity per item): sweeps like them may be in
flight when a worker with the chunked code starts, so they must keep replaying.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path

from activities.local_backend import LocalBackend
from bench.stack import embedded_stack
from boomerang.artifacts import LocalArtifactStore
from boomerang.constants import SWEEP_WORKFLOW
from boomerang.models.sweeps import SweepInput, SweepProgress, SweepSpec
from boomerang.store.costs import LedgerCosts
from boomerang.store.recorder import EventStore
from boomerang.store.sweeps import SweepResults
from worker import build_worker

HERE = Path(__file__).parent
SPEC = SweepSpec(
    function="sweep_simulate",
    grid={"steps": [1, 2], "seed": [1, 2, 3]},
    base={"walkers": 1, "sleep_s": 0.05},
    max_parallel=2,
    batch_by="steps",
    items_per_run=4,
    expected_seconds=0.05,
)


async def record(prefix: str) -> None:
    backend = LocalBackend(max_concurrency=2)
    async with embedded_stack() as (env, pool):
        task_queue = f"record-sweep-{uuid.uuid4().hex[:8]}"
        with tempfile.TemporaryDirectory() as artifacts:
            async with build_worker(
                env.client, task_queue=task_queue, backend=backend, events=EventStore(pool),
                costs=LedgerCosts(pool), sweeps=(SweepResults(pool), LocalArtifactStore(Path(artifacts))),
            ):  # fmt: skip
                handle = await env.client.start_workflow(
                    SWEEP_WORKFLOW,
                    SweepInput(tenant="acme", spec=SPEC),
                    id=f"history-{prefix}",
                    task_queue=task_queue,
                    result_type=SweepProgress,
                )
                final = await handle.result()
                assert (final.status, final.done, final.runs) == ("completed", 6, 2), final
                first = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
                last = env.client.get_workflow_handle(handle.id)
                for name, run in (("first_run", first), ("last_run", last)):
                    history = await run.fetch_history()
                    (HERE / f"{prefix}_{name}.json").write_text(history.to_json() + "\n")
                    print(f"wrote {prefix}_{name}.json: {len(history.events)} events")
    await backend.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prefix", default="sweep_chunks")
    asyncio.run(record(parser.parse_args().prefix))
    # temporalio can abort at interpreter exit (sdk-python #300): leave with our own status.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
