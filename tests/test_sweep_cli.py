"""`boomerang sweep estimate|start|status|watch|results|cancel` as subprocesses, end to end.

The worker runs in this test's event loop over the session's dev server and Postgres;
the commands reach it through the environment, as a user's shell would. The function
swept is the README's worked example, a user's own module (examples/my_lab/sims.py)
named in BOOMERANG_COMPUTE_MODULES; one sweep runs over a specialist task type.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.artifacts import LocalArtifactStore
from boomerang.client import BoomerangClient
from boomerang.models.sweeps import SweepProgress, SweepResult
from boomerang.store.costs import LedgerCosts
from boomerang.store.queries import Pool
from boomerang.store.sweeps import SweepResults
from modal_app.registry import MODULES_ENV, load_registry
from tests.helpers import wait_until
from tests.test_cli import BOOMERANG, Ran, run
from worker import build_worker

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODULE = "my_lab.sims"
ANGLES, DRAGS = [15, 30, 45, 60], [0, 0.1, 0.5]
GRID = {"angle_deg": ANGLES, "drag": DRAGS}
PROGRESS_KEYS = {
    "sweep_id",
    "status",
    "total",
    "done",
    "failed",
    "running",
    "pending",
    "spent_usd",
    "batches",
}


@asynccontextmanager
async def sweep_stack(
    env: WorkflowEnvironment, events: EventSink, pool: Pool, conninfo: str, tmp_path: Path
) -> AsyncIterator[tuple[BoomerangClient, dict[str, str]]]:
    """A worker with sweeps over the user's module, and the environment a shell needs to reach it."""
    backend = LocalBackend(max_concurrency=4, registry=load_registry((MODULE,)))
    task_queue = f"tq-sweep-cli-{uuid.uuid4().hex}"
    try:
        async with build_worker(
            env.client, task_queue=task_queue, backend=backend, events=events, costs=LedgerCosts(pool),
            sweeps=(SweepResults(pool), LocalArtifactStore(tmp_path / "artifacts")),
        ):  # fmt: skip
            yield (
                BoomerangClient(env.client, task_queue=task_queue),
                {
                    "BOOMERANG_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                    "BOOMERANG_TEMPORAL_TASK_QUEUE": task_queue,
                    "BOOMERANG_TEMPORAL_NAMESPACE": env.client.namespace,
                    "DATABASE_URL": conninfo,
                    MODULES_ENV: MODULE,
                },
            )
    finally:
        await backend.aclose()


@pytest.fixture
def user_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/ on the path of this process and of every process it starts, as a user would set it."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, (str(EXAMPLES), os.environ.get("PYTHONPATH"))))
    )


async def sweep(env: dict[str, str], *args: str) -> Ran:
    return await run(str(BOOMERANG), "sweep", *args, env=env)


def _rows(out: str) -> list[SweepResult]:
    return [SweepResult.model_validate_json(line) for line in out.splitlines()]


@pytest.mark.usefixtures("user_module")
async def test_a_user_function_swept_from_the_cli(
    dev_env: WorkflowEnvironment, event_store: EventSink, store_pool: Pool, pg_conninfo: str, tmp_path: Path
) -> None:
    tenant = f"lab-{uuid.uuid4().hex[:8]}"
    grid = (
        "--function",
        "projectile",
        "--grid",
        json.dumps(GRID),
        "--max-parallel",
        "4",
        "--batch-by",
        "drag",
    )
    async with sweep_stack(dev_env, event_store, store_pool, pg_conninfo, tmp_path) as (_, env):
        estimate = await sweep(env, "estimate", *grid, "--expected-seconds", "0.5")
        started = await sweep(env, "start", *grid, "--tenant", tenant, "--max-cost-usd", "1")
        assert started.code == 0, started.output
        sweep_id = started.out.splitlines()[-1]
        watched = await sweep(env, "watch", sweep_id, "--every-s", "0.2")
        shown = await sweep(env, "status", sweep_id, "--json")
        as_jsonl = await sweep(env, "results", sweep_id, "--format", "jsonl")
        as_csv = await sweep(env, "results", sweep_id, "--format", "csv")
        unknown = await sweep(env, "status", "sweep-no-such-sweep")
        bad = await sweep(
            env,
            "start",
            "--function",
            "projectile",
            "--grid",
            '{"angle_deg": [30, 95]}',
            "--base",
            '{"drag": 0.1}',
        )

    assert estimate.code == 0, estimate.output
    assert "items: 12 in 3 batches" in estimate.out
    assert (
        "estimated cost: $" in estimate.out and "estimated wall time: 1.5 s at max_parallel 4" in estimate.out
    )
    assert sweep_id.startswith("sweep-")
    assert watched.code == 0 and "completed: 12 done, 0 failed" in watched.out, watched.output

    assert shown.code == 0, shown.output
    status = json.loads(shown.out)
    assert set(status) >= PROGRESS_KEYS
    progress = SweepProgress.model_validate(status)
    assert (progress.status, progress.total, progress.done, progress.running, progress.pending) == (
        "completed", 12, 12, 0, 0,
    )  # fmt: skip
    assert [(b.key, b.done, b.total) for b in progress.batches] == [("0", 4, 4), ("0.1", 4, 4), ("0.5", 4, 4)]
    assert progress.tenant == tenant

    rows = _rows(as_jsonl.out)
    assert [r.item_index for r in rows] == list(range(12))
    assert {(r.params["angle_deg"], r.params["drag"]) for r in rows} == {
        (a, d) for a in ANGLES for d in DRAGS
    }
    assert all(r.status == "succeeded" and r.output and r.output["dt"] == 0.01 for r in rows)
    # Spend is the items' costs (a few ms each on a quarter CPU: fractions of a cent).
    assert progress.spent_usd == sum((r.cost_usd for r in rows), Decimal(0)) < Decimal(1)
    # Real physics: without drag, 45 degrees carries furthest; drag shortens every flight.
    ranges: dict[tuple[Any, Any], Any] = {
        (r.params["angle_deg"], r.params["drag"]): r.output["range_m"] for r in rows if r.output
    }
    assert max(ANGLES, key=lambda a: ranges[(a, 0)]) == 45
    assert all(ranges[(a, 0.5)] < ranges[(a, 0.1)] < ranges[(a, 0)] for a in ANGLES)
    table = list(csv.DictReader(io.StringIO(as_csv.out)))
    assert [int(r["item_index"]) for r in table] == list(range(12))
    assert [json.loads(r["output"]) for r in table] == [r.output for r in rows]

    assert unknown.code == 3 and "no sweep 'sweep-no-such-sweep'" in unknown.err
    assert bad.code == 2 and "1 of 2 items do not fit projectile's payload" in bad.err, bad.output
    assert "angle_deg: Input should be less than 90" in bad.err


@pytest.mark.usefixtures("user_module")
async def test_an_axis_selects_the_variant_and_cancel_cancels(
    dev_env: WorkflowEnvironment, event_store: EventSink, store_pool: Pool, pg_conninfo: str, tmp_path: Path
) -> None:
    grid = {"deployment": ["projectile", "projectile_fine"], "angle_deg": [30, 45], "drag": [0.1]}
    async with sweep_stack(dev_env, event_store, store_pool, pg_conninfo, tmp_path) as (client, env):
        estimate = await sweep(
            env,
            "estimate",
            "--function",
            "projectile",
            "--grid",
            json.dumps(grid),
            "--variant-axis",
            "deployment",
        )
        waited = await sweep(
            env, "start", "--function", "projectile", "--grid", json.dumps(grid),
            "--variant-axis", "deployment", "--wait",
        )  # fmt: skip
        assert waited.code == 0, waited.output
        variants = await sweep(env, "results", waited.out.splitlines()[-1])

        # A cap below one item's estimate: the sweep waits at its budget checkpoint.
        capped = await sweep(
            env,
            "start",
            "--function",
            "projectile",
            "--grid",
            json.dumps(GRID),
            "--max-cost-usd",
            "0.0000000001",
        )
        sweep_id = capped.out.splitlines()[-1]

        async def paused() -> SweepProgress | None:
            p = await client.sweep_progress(sweep_id)
            return p if p.status == "awaiting_approval" else None

        await wait_until(paused, what="the budget checkpoint")
        cancelled = await sweep(env, "cancel", sweep_id, "--by", "finn", "--reason", "too dear")
        shown = await sweep(env, "status", sweep_id)

    assert estimate.code == 0 and "(projectile, projectile_fine)" in estimate.out, estimate.output
    *_, final, _ = waited.out.splitlines()
    assert final.startswith("completed: 4 done, 0 failed")
    rows = _rows(variants.out)
    assert len(rows) == 4
    assert {(r.params["deployment"], r.output and r.output["dt"]) for r in rows} == {
        ("projectile", 0.01), ("projectile_fine", 0.0005),
    }  # fmt: skip
    assert cancelled.code == 0 and cancelled.out.strip() == f"{sweep_id}: cancel applied", cancelled.output
    assert shown.out.startswith("cancelled: 0 done, 0 failed, 0 running, 12 pending of 12"), shown.output


# Three small datasets, y = a + b * x: Crunch_Ang must find each a and b.
LINES = [(1.0, 2.0), (-3.0, 0.5), (10.0, -4.0)]


@pytest.mark.usefixtures("user_module")
async def test_a_sweep_over_a_specialist_task_type(
    dev_env: WorkflowEnvironment, event_store: EventSink, store_pool: Pool, pg_conninfo: str, tmp_path: Path
) -> None:
    items = tmp_path / "datasets.jsonl"
    xs = [1, 2, 3, 4, 5]
    items.write_text(
        "".join(
            json.dumps({"columns": {"x": xs, "y": [a + b * x for x in xs]}, "target": "y"}) + "\n"
            for a, b in LINES
        )
    )
    async with sweep_stack(dev_env, event_store, store_pool, pg_conninfo, tmp_path) as (_, env):
        estimate = await sweep(env, "estimate", "--type", "data_analysis", "--items", str(items))
        started = await sweep(env, "start", "--type", "data_analysis", "--items", str(items), "--wait")
        assert started.code == 0, started.output
        found = await sweep(env, "results", started.out.splitlines()[-1], "--format", "jsonl")

    assert estimate.code == 0 and "items: 3" in estimate.out, estimate.output
    assert started.out.splitlines()[-2].startswith("completed: 3 done, 0 failed")
    rows = _rows(found.out)
    assert [r.status for r in rows] == ["succeeded"] * 3
    for row, (a, b) in zip(rows, LINES, strict=True):
        assert row.output is not None
        regression: Any = row.output["regression"]
        assert regression["intercept"] == pytest.approx(a) and regression["coefficients"][
            "x"
        ] == pytest.approx(b)
        stats: Any = row.output["columns"]
        assert stats["y"]["mean"] == pytest.approx(a + b * 3)
