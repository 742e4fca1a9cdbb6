"""A worker process killed with SIGKILL loses nothing: Temporal holds the run, Postgres the events.

Each test runs `python worker.py` as a separate OS process (the way production runs
it) against the session's dev server and Postgres, kills it outright at a chosen
moment, starts another and checks that the run finishes with every decision and
phase output, and that the Charter holds each event exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.testing import WorkflowEnvironment

from activities.attempts import AttemptBeat
from boomerang.client import BoomerangClient
from boomerang.models.decisions import DecisionInput, PipelineResult, RunStatus
from boomerang.models.pipeline import PipelineInput
from boomerang.pipelines import startup_validation_pipeline
from boomerang.store.costs import cost_report, cost_to_date
from boomerang.store.queries import charter_for_run
from tests.helpers import (
    BRIEF,
    CHECKPOINTS,
    PHASES,
    expected_events,
    wait_for_checkpoint,
    wait_for_poller,
    wait_until,
)

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
REPO = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """`python worker.py` in its own process group, so a kill takes its compute children too."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    @property
    def identity_prefix(self) -> str:
        # The SDK's default worker identity is "<pid>@<host>".
        return f"{self.proc.pid}@"

    def kill(self) -> None:
        if self.proc.returncode is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


@asynccontextmanager
async def worker_process(
    env: WorkflowEnvironment, *, task_queue: str, conninfo: str, log: Path
) -> AsyncIterator[WorkerProcess]:
    """A started worker process, polling `task_queue`; always killed on the way out."""
    environ = {
        **os.environ,
        "BOOMERANG_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "BOOMERANG_TEMPORAL_NAMESPACE": env.client.namespace,
        "BOOMERANG_TEMPORAL_TASK_QUEUE": task_queue,
        "DATABASE_URL": conninfo,
    }
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", cwd=REPO, env=environ, stdout=out, stderr=out,
            start_new_session=True,
        )  # fmt: skip
    worker = WorkerProcess(proc, log)
    try:
        polling = asyncio.ensure_future(
            wait_for_poller(env.client, task_queue, identity_prefix=worker.identity_prefix)
        )
        exited = asyncio.ensure_future(proc.wait())
        await asyncio.wait([polling, exited], return_when=asyncio.FIRST_COMPLETED)
        if not polling.done():
            polling.cancel()
            raise AssertionError(f"worker exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        exited.cancel()
        polling.result()
        yield worker
    finally:
        worker.kill()
        await proc.wait()


async def _decide(client: BoomerangClient, run_id: str, checkpoint: str) -> None:
    await wait_for_checkpoint(client, run_id, checkpoint)
    receipt = await client.decide(run_id, DecisionInput(checkpoint=checkpoint, approver="alice"))
    assert receipt.status == "applied"


async def _no_activity_in_flight(env: WorkflowEnvironment, run_id: str) -> None:
    async def probe() -> bool | None:
        desc = await env.client.get_workflow_handle(run_id).describe()
        return True if not desc.raw_description.pending_activities else None

    await wait_until(probe, what=f"{run_id} to have no activity in flight")


async def _phase_running(env: WorkflowEnvironment, run_id: str) -> None:
    async def probe() -> bool | None:
        desc = await env.client.get_workflow_handle(run_id).describe()
        started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        return True if any(
            a.activity_type.name == "dispatch" and a.state == started
            for a in desc.raw_description.pending_activities
        ) else None  # fmt: skip

    await wait_until(probe, what=f"a phase of {run_id} to be running")


async def _beat_after(env: WorkflowEnvironment, run_id: str, seconds: float) -> None:
    """Wait until the server holds a heartbeat sent `seconds` into a running phase."""
    converter = env.client.data_converter

    async def probe() -> bool | None:
        desc = await env.client.get_workflow_handle(run_id).describe()
        for pending in desc.raw_description.pending_activities:
            if pending.activity_type.name != "dispatch" or not pending.heartbeat_details.payloads:
                continue
            details = await converter.decode(pending.heartbeat_details.payloads)
            beat = AttemptBeat.model_validate(details[-1])
            if beat.seconds >= seconds:
                return True
        return None

    await wait_until(probe, what=f"a phase of {run_id} to heartbeat {seconds:g}s in")


async def _attempt_rows(store_pool: Pool, run_id: str) -> dict[str, dict[int, tuple[str, float, Decimal]]]:
    """The run's compute attempts (its specialists' included): activity -> attempt -> row."""
    async with store_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT event_key, attempt, status, execution_time_s, total_cost FROM ledger"
            " WHERE run_id = %s AND kind = 'compute_attempt' ORDER BY seq",
            (run_id,),
        )
        rows = await cur.fetchall()
    activities: dict[str, dict[int, tuple[str, float, Decimal]]] = {}
    for key, attempt, status, seconds, cost in rows:
        attempts = activities.setdefault(str(key).rsplit("/", 1)[0], {})
        assert attempt not in attempts, f"{key} has two rows"
        attempts[int(attempt)] = (str(status), float(seconds or 0), Decimal(cost))
    return activities


async def _phase_attempts(env: WorkflowEnvironment, run_id: str) -> list[int]:
    """The attempt number of every dispatch activity of the run that completed, in order."""
    history = await env.client.get_workflow_handle(run_id).fetch_history()
    scheduled: dict[int, str] = {}
    started: dict[int, int] = {}
    attempts: list[int] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            started[attrs.scheduled_event_id] = attrs.attempt
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sched = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled[sched] == "dispatch":
                attempts.append(started[sched])
    return attempts


async def _assert_charter_once_each(store_pool: Pool, run_id: str, tenant: str) -> None:
    rows = await charter_for_run(store_pool, run_id, tenant)
    seen = Counter((r.event, r.phase, r.checkpoint) for r in rows)
    assert seen == expected_events()
    assert len({r.event_key for r in rows}) == len(rows)


def _assert_complete(result: PipelineResult) -> None:
    assert result.status is RunStatus.COMPLETED
    assert list(result.outputs) == list(PHASES)
    assert all(isinstance(out, dict) and out for out in result.outputs.values())
    assert [d.checkpoint for d in result.decisions] == list(CHECKPOINTS)


async def test_worker_killed_at_a_checkpoint_loses_no_decision(
    dev_env: WorkflowEnvironment, pg_conninfo: str, store_pool: Pool, tmp_path: Path
) -> None:
    task_queue = f"tq-crash-{uuid.uuid4().hex}"
    tenant = f"crash-{uuid.uuid4().hex[:8]}"
    client = BoomerangClient(dev_env.client, task_queue=task_queue)
    log = tmp_path / "worker.log"
    start = PipelineInput(tenant=tenant, project_id="clinic", brief=BRIEF)

    async with worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=log) as first:
        run_id = await client.start_pipeline(start)
        await _decide(client, run_id, CHECKPOINTS[0])
        await wait_for_checkpoint(client, run_id, CHECKPOINTS[1])
        await _no_activity_in_flight(dev_env, run_id)
        first.kill()
        assert await first.proc.wait() == -signal.SIGKILL

    # No worker is alive: a signal still lands in the run's history and waits there.
    handle = dev_env.client.get_workflow_handle(run_id)
    await handle.signal("approve", {"checkpoint": CHECKPOINTS[1], "approver": "bob"})

    async with worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=log):
        status = await wait_for_checkpoint(client, run_id, CHECKPOINTS[2])
        assert [(d.checkpoint, d.approver, d.via) for d in status.decisions] == [
            (CHECKPOINTS[0], "alice", "client"),
            (CHECKPOINTS[1], "bob", "signal:approve"),
        ]
        for name in CHECKPOINTS[2:]:
            await _decide(client, run_id, name)
        result = await client.result(run_id)

    _assert_complete(result)
    await _assert_charter_once_each(store_pool, run_id, tenant)


async def test_worker_killed_mid_phase_retries_the_phase(
    dev_env: WorkflowEnvironment, pg_conninfo: str, store_pool: Pool, tmp_path: Path
) -> None:
    task_queue = f"tq-crash-{uuid.uuid4().hex}"
    tenant = f"crash-{uuid.uuid4().hex[:8]}"
    client = BoomerangClient(dev_env.client, task_queue=task_queue)
    log = tmp_path / "worker.log"
    # A dead worker's phase is retried once its heartbeat timeout passes; 3 s keeps the
    # test short with a margin over the 1 s beat (a third of it). The SDK sends beats at
    # most every 0.8 x 3 s, so a 4 s phase lets one beat after its start reach the server.
    base = startup_validation_pipeline()
    spec = base.model_copy(
        update={"phases": tuple(
            p.model_copy(update={"heartbeat_timeout": timedelta(seconds=3)}) for p in base.phases
        )}
    )  # fmt: skip
    start = PipelineInput(
        tenant=tenant, project_id="clinic", brief=BRIEF, spec=spec, context={"work_seconds": 4}
    )

    async with worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=log) as first:
        began = time.time()
        run_id = await client.start_pipeline(start)
        await _phase_running(dev_env, run_id)
        await _beat_after(dev_env, run_id, 1.0)
        first.kill()
        ran_at_most = time.time() - began
        assert await first.proc.wait() == -signal.SIGKILL

    async with worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=log):
        for name in CHECKPOINTS:
            await _decide(client, run_id, name)
        result = await client.result(run_id)

    _assert_complete(result)
    attempts = await _phase_attempts(dev_env, run_id)
    assert len(attempts) == len(PHASES) + 1  # each phase, and phase 1's research task inside the run
    assert attempts[0] >= 2, f"onboarding completed on attempt {attempts[0]}; the kill did not land"
    await _assert_charter_once_each(store_pool, run_id, tenant)
    # Every attempt has its one row; the killed one is costed for what it ran until its
    # heartbeat stopped: more than nothing, no more than the time before the kill.
    activities = await _attempt_rows(store_pool, run_id)
    assert all(sorted(a) == list(range(1, len(a) + 1)) for a in activities.values())
    killed = [a[1] for a in activities.values() if len(a) == attempts[0] and a[1][0] == "lost"]
    assert len(killed) == 1, activities
    _, seconds, cost = killed[0]
    assert 1.0 <= seconds <= ran_at_most and cost > 0
    total = sum((row[2] for a in activities.values() for row in a.values()), Decimal(0))
    report = await cost_report(store_pool, run_id)
    assert report.total_cost == total == await cost_to_date(store_pool, run_id)
