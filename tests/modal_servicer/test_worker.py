"""Boomerang's workers with `BOOMERANG_COMPUTE_BACKEND=modal`, the real SDK and the local Modal.

A specialist task and a pipeline phase run through the deployed functions; a worker
SIGKILLed mid-call is replaced by one that re-attaches to the same call (one spawn,
one paid `compute_attempt` row in the Ledger); a cancelled task cancels its call on Modal.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.modal_backend import ModalBackend
from activities.records import EventSink
from boomerang.client import BoomerangClient
from boomerang.models.pipeline import PipelineInput
from boomerang.models.tasks import TaskInput
from boomerang.pipelines import startup_validation_pipeline
from boomerang.settings import ComputeBackendName, Settings
from boomerang.store.costs import LedgerCosts
from boomerang.store.queries import Pool
from tests.helpers import BRIEF, CHECKPOINTS, PHASES, wait_for_checkpoint, wait_until
from tests.modal_servicer.servicer import ModalServicer
from tests.test_crash import worker_process
from worker import build_backend, build_worker

CRUNCH: dict[str, Any] = {"columns": {"x": [1, 2, 3, 4, 5], "y": [3, 5, 7, 9, 11]}, "target": "y"}


@asynccontextmanager
async def modal_worker(
    env: WorkflowEnvironment, events: EventSink, pool: Pool
) -> AsyncIterator[BoomerangClient]:
    """An in-process worker built from settings as `worker.py` builds it, on a fresh queue."""
    settings = Settings(compute_backend=ComputeBackendName.MODAL, modal_poll_s=0.2)
    backend = build_backend(settings)
    assert isinstance(backend, ModalBackend)
    task_queue = f"tq-modal-{uuid.uuid4().hex}"
    async with build_worker(
        env.client, task_queue=task_queue, backend=backend, events=events, costs=LedgerCosts(pool)
    ):
        yield BoomerangClient(env.client, task_queue=task_queue)


async def compute_attempts(pool: Pool, run_id: str) -> list[tuple[int, str, str, Any]]:
    """(attempt, status, function, total cost) of each `compute_attempt` Ledger row of the run."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT attempt, status, details->>'function', total_cost FROM ledger"
            " WHERE run_id = %s AND kind = 'compute_attempt' ORDER BY seq",
            (run_id,),
        )
        return [tuple(row) for row in await cur.fetchall()]


async def test_a_specialist_task_runs_on_modal_and_is_billed_once(
    dev_env: WorkflowEnvironment, event_store: EventSink, store_pool: Pool, modal_service: ModalServicer
) -> None:
    async with modal_worker(dev_env, event_store, store_pool) as client:
        task_id = await client.start_task(TaskInput(tenant="acme", task_type="data_analysis", payload=CRUNCH))
        outcome = await client.task_result(task_id)
    assert (outcome.status, outcome.boomer_ang_id) == ("completed", "Crunch_Ang")
    regression: Any = outcome.output["regression"]
    assert regression["coefficients"]["x"] == pytest.approx(2.0)
    assert [c.function for c in modal_service.calls.values()] == ["task_crunch_ang"]
    ((attempt, status, function, cost),) = await compute_attempts(store_pool, task_id)
    assert (attempt, status, function) == (1, "ok", "task_crunch_ang") and cost > 0


async def test_cancelling_a_task_cancels_its_call_on_modal(
    dev_env: WorkflowEnvironment, event_store: EventSink, store_pool: Pool, modal_service: ModalServicer
) -> None:
    modal_service.held = True
    # A cancel reaches an activity with its next heartbeat, which Temporal sends at most every
    # 0.8 x heartbeat timeout: 2 s here, where the default (30 s) would take 24 s.
    inp = TaskInput(
        tenant="acme", task_type="data_analysis", payload=CRUNCH, heartbeat_timeout=timedelta(seconds=2)
    )
    async with modal_worker(dev_env, event_store, store_pool) as client:
        task_id = await client.start_task(inp)
        await modal_service.until(lambda: modal_service.polls >= 1)
        (call_id,) = modal_service.calls
        handle = dev_env.client.get_workflow_handle(task_id)
        await handle.cancel()
        await modal_service.until(lambda: modal_service.cancelled == [call_id])
        # A Temporal cancel ends the task cleanly, cancelled, with nobody named.
        outcome = await client.task_result(task_id)
        assert outcome.status == "cancelled"
        assert outcome.cancellation is not None and outcome.cancellation.by is None

        async def recorded() -> list[tuple[int, str, str, Any]] | None:
            return await compute_attempts(store_pool, task_id) or None

        rows = await wait_until(recorded, what="the cancelled attempt in the Ledger")
    assert [(attempt, status) for attempt, status, _, _ in rows] == [(1, "cancelled")]
    assert modal_service.spawns == 1


async def test_a_worker_killed_mid_phase_reattaches_to_the_same_call(
    dev_env: WorkflowEnvironment,
    pg_conninfo: str,
    store_pool: Pool,
    modal_service: ModalServicer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `worker.py` as production runs it, pointed at the local Modal (MODAL_* set by the fixture).
    monkeypatch.setenv("BOOMERANG_COMPUTE_BACKEND", "modal")
    monkeypatch.setenv("BOOMERANG_MODAL_POLL_S", "0.3")
    task_queue = f"tq-modal-crash-{uuid.uuid4().hex}"
    client = BoomerangClient(dev_env.client, task_queue=task_queue)
    log = tmp_path / "worker.log"
    # A dead worker's phase is retried once its heartbeat times out: 3 s keeps the test short.
    base = startup_validation_pipeline()
    phases = tuple(p.model_copy(update={"heartbeat_timeout": timedelta(seconds=3)}) for p in base.phases)
    spec = base.model_copy(update={"phases": phases})
    modal_service.held = True

    async with worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=log) as first:
        run_id = await client.start_pipeline(
            PipelineInput(tenant="acme", project_id="clinic", brief=BRIEF, spec=spec)
        )
        await modal_service.until(lambda: modal_service.polls >= 2)  # spawned, heartbeated, polling
        first.kill()
        assert await first.proc.wait() == -signal.SIGKILL
    (call_id,) = modal_service.calls
    polls_before = modal_service.polls

    async with worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=log):
        await modal_service.until(lambda: modal_service.polls > polls_before, timeout_s=60)
        modal_service.release()
        status = await wait_for_checkpoint(client, run_id, CHECKPOINTS[0])

    onboarding: Any = status.outputs[PHASES[0]]
    assert "Clinics struggle with manual billing errors that waste hours." in str(onboarding)
    assert list(modal_service.calls) == [call_id] and modal_service.cancelled == []
    assert modal_service.calls[call_id].function == "phase_0_onboarding"
    # The re-attached attempt bills the call; the killed one is settled as lost, at no cost.
    rows = await compute_attempts(store_pool, run_id)
    assert [(attempt, status_, function) for attempt, status_, function, _ in rows] == [
        (1, "lost", "phase_0_onboarding"),
        (2, "ok", "phase_0_onboarding"),
    ]
    assert rows[0][3] == 0
