"""Faults on a stack of its own, with the counts that say nothing was lost or doubled.

`FaultStack` starts a Temporal dev server on a SQLite file and an embedded PostgreSQL,
both dedicated (so they can be stopped and started without touching the test
session's), and `python worker.py` processes against them. `fault_round` runs
pipelines to the end while it SIGKILLs workers at random moments, restarts the
Temporal server and stops PostgreSQL for a while; `audit` then counts, from Temporal's
histories and the database, what a fault could have broken. `tests/test_faults.py`
runs one short round in CI; `bench/soak_faults.py` runs many and prints the counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from boomerang.client import BoomerangClient
from boomerang.devstack import TemporalDevServer
from boomerang.errors import InvalidDecisionError
from boomerang.models.decisions import DecisionInput, DecisionReceipt, RunStatus
from boomerang.models.pipeline import PipelineInput, PipelineSpec
from boomerang.pipelines import startup_validation_pipeline
from boomerang.store.costs import cost_to_date
from boomerang.store.embedded import EmbeddedPostgres, start_embedded_postgres
from boomerang.store.integrity import verify
from boomerang.store.migrate import apply_migrations
from boomerang.store.queries import Pool, charter_for_run
from boomerang.store.recorder import open_pool
from tests.fixtures.postgres_control import start_embedded, stop_embedded
from tests.helpers import BRIEF, CHECKPOINTS, PHASES, expected_events, wait_for_poller
from worker import WORKFLOWS

REPO = Path(__file__).resolve().parent.parent
# How fault_round sends decisions: the client's way, the bare update, the bare signal.
VIAS = ("client", "update", "signal")
TERMINAL = {RunStatus.COMPLETED, RunStatus.REJECTED, RunStatus.EXPIRED, RunStatus.FAILED, RunStatus.CANCELLED}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fault_spec(heartbeat_s: float = 3) -> PipelineSpec:
    """The default pipeline, with dead workers noticed in `heartbeat_s` and room for retries."""
    base = startup_validation_pipeline()
    phases = tuple(
        p.model_copy(update={"heartbeat_timeout": timedelta(seconds=heartbeat_s), "max_attempts": 20})
        for p in base.phases
    )
    return base.model_copy(update={"phases": phases})


@dataclass
class Counts:
    """What one or more rounds did and found; `problems` must stay empty."""

    runs: int = 0
    completed: int = 0
    kills: int = 0
    temporal_restarts: int = 0
    postgres_outages: int = 0
    decisions_sent: int = 0
    decisions_recorded: int = 0
    charter_rows: int = 0
    ledger_rows: int = 0
    attempts: int = 0
    lost_attempts: int = 0
    retried_phases: int = 0
    verify_rows: int = 0
    replay_failures: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        for name, value in vars(other).items():
            if name == "problems":
                self.problems += value
            else:
                setattr(self, name, getattr(self, name) + value)


class FaultStack:
    """A dedicated Temporal dev server, PostgreSQL and worker processes; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.temporal = TemporalDevServer(
            state_dir=root / "temporal", port=_free_port(), ui_port=_free_port()
        )
        self.task_queue = f"tq-faults-{uuid.uuid4().hex[:8]}"
        self.pg: EmbeddedPostgres | None = None
        self.pool: Pool | None = None
        self.client: Client | None = None
        self.workers: list[asyncio.subprocess.Process] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def started(cls, root: Path) -> AsyncIterator[FaultStack]:
        stack = cls(root)
        try:
            stack.pg = await asyncio.to_thread(start_embedded_postgres, root / "pg")
            await apply_migrations(stack.pg.conninfo)
            stack.pool = await open_pool(stack.pg.conninfo, max_size=8)
            await stack.temporal.start()
            stack.client = await Client.connect(
                stack.temporal.address, data_converter=pydantic_data_converter
            )
            await stack.start_worker()
            yield stack
        finally:
            for proc in stack.workers:
                _kill(proc)
                await proc.wait()
            stack.temporal.stop()
            if stack.pool is not None:
                await stack.pool.close()
            if stack.pg is not None:
                await asyncio.to_thread(stack.pg.stop)
                # A server started again by pg_ctl is not one pgserver stops itself.
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(stop_embedded, stack.pg)

    @property
    def boomerang(self) -> BoomerangClient:
        assert self.client is not None
        return BoomerangClient(self.client, task_queue=self.task_queue)

    async def start_worker(self) -> None:
        assert self.pg is not None and self.client is not None
        environ = {
            **os.environ,
            "BOOMERANG_TEMPORAL_ADDRESS": self.temporal.address,
            "BOOMERANG_TEMPORAL_NAMESPACE": "default",
            "BOOMERANG_TEMPORAL_TASK_QUEUE": self.task_queue,
            "DATABASE_URL": self.pg.conninfo,
        }
        with (self.root / "worker.log").open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "worker.py", cwd=REPO, env=environ, stdout=out, stderr=out,
                start_new_session=True,
            )  # fmt: skip
        self.workers.append(proc)
        await wait_for_poller(self.client, self.task_queue, identity_prefix=f"{proc.pid}@", timeout_s=90)

    async def kill_worker(self) -> None:
        """SIGKILL the oldest live worker (and its compute processes), then start another."""
        live = [p for p in self.workers if p.returncode is None]
        _kill(live[0])
        await live[0].wait()
        await self.start_worker()

    async def restart_temporal(self) -> None:
        self.temporal.stop()
        await self.temporal.start()

    async def postgres_outage(self, seconds: float) -> None:
        assert self.pg is not None
        await asyncio.to_thread(stop_embedded, self.pg)
        await asyncio.sleep(seconds)  # the outage itself: its length is the fault
        await asyncio.to_thread(start_embedded, self.pg)


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


async def _retrying(what: str, call: Any, *, deadline: float) -> Any:
    """`await call()` until it succeeds: the front door fails while Temporal is down."""
    delay = 0.1
    while True:
        try:
            return await call()
        except InvalidDecisionError:
            raise
        except Exception:
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up on {what}") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def _drive(
    stack: FaultStack, run_id: str, counts: Counts, *, via: str, deadline: float, faults_done: asyncio.Event
) -> None:
    """Approve each checkpoint as it opens (one decision id each, so a resend is a no-op);
    the last one only once every fault has been injected, so none lands after the runs."""
    try:
        await _approve_all(stack, run_id, counts, via=via, deadline=deadline, faults_done=faults_done)
    except AssertionError as exc:
        counts.problems.append(f"{run_id}: {exc}")


async def _approve_all(
    stack: FaultStack, run_id: str, counts: Counts, *, via: str, deadline: float, faults_done: asyncio.Event
) -> None:
    client = stack.boomerang
    last = fault_spec().phases[-1].checkpoints[-1].name
    signalled: set[str] = set()

    async def _signal(payload: dict[str, Any]) -> None:
        await client.temporal.get_workflow_handle(run_id).signal("decide", payload)

    async def _update(decision: DecisionInput) -> DecisionReceipt:
        # The bare `decide` update, as the Temporal CLI sends it (no client retries).
        try:
            return await client.temporal.get_workflow_handle(run_id).execute_update(
                "decide", decision, result_type=DecisionReceipt, rpc_timeout=timedelta(seconds=10)
            )
        except WorkflowUpdateFailedError as exc:
            raise InvalidDecisionError(str(exc.cause or exc)) from exc

    async def _send(decision: DecisionInput) -> DecisionReceipt:
        return await (_update(decision) if via == "update" else client.decide(run_id, decision))

    while True:
        status = await _retrying(f"status of {run_id}", lambda: client.status(run_id), deadline=deadline)
        if status.status in TERMINAL:
            return
        for view in status.pending:
            if view.name == last:
                await faults_done.wait()
            decision = DecisionInput(
                checkpoint=view.name, approver="fault-suite", decision_id=f"{run_id}/{view.name}"
            )
            if via == "signal":
                payload = decision.model_dump(mode="json", exclude_none=True)
                await _retrying(f"signal {view.name}", lambda p=payload: _signal(p), deadline=deadline)
                counts.decisions_sent += view.name not in signalled
                signalled.add(view.name)
                continue
            try:
                what = f"decide {view.name}"
                receipt = await _retrying(what, lambda d=decision: _send(d), deadline=deadline)
            except InvalidDecisionError:
                continue  # decided meanwhile (the status read was older than the decision)
            counts.decisions_sent += receipt.status == "applied"
        if time.monotonic() > deadline:
            raise AssertionError(f"{run_id} did not finish in time")
        await asyncio.sleep(0.1)


async def fault_round(
    stack: FaultStack,
    *,
    runs: int,
    kills: int,
    restart_temporal: bool,
    postgres_down_s: float,
    rng: random.Random,
    via: str = "client",
    work_seconds: float = 0.5,
    timeout_s: float = 240,
) -> Counts:
    """Run `runs` pipelines to the end under the faults asked for; then `audit` them.

    Decisions go `via` the client (`BoomerangClient.decide`: a query, the `decide`
    signal, a query), the bare `decide` update or the bare `decide` signal.
    """
    if via not in VIAS:
        raise ValueError(f"via must be one of {', '.join(VIAS)}, got {via!r}")
    counts = Counts(runs=runs)
    began = time.monotonic()
    deadline = began + timeout_s
    spec = fault_spec()
    tenant = f"faults-{uuid.uuid4().hex[:6]}"
    run_ids = [
        await stack.boomerang.start_pipeline(
            PipelineInput(
                tenant=tenant,
                project_id="clinic",
                brief=BRIEF,
                spec=spec,
                context={"work_seconds": work_seconds},
            )
        )
        for _ in range(runs)
    ]
    faults_done = asyncio.Event()
    drivers = asyncio.gather(
        *(_drive(stack, r, counts, via=via, deadline=deadline, faults_done=faults_done) for r in run_ids)
    )
    faults: list[str] = (
        ["kill"] * kills + ["temporal"] * restart_temporal + ["postgres"] * (postgres_down_s > 0)
    )
    rng.shuffle(faults)
    try:
        for fault in faults:
            # A random point of the runs: mid-phase, at a checkpoint, between events.
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            if drivers.done():
                break
            if fault == "kill":
                await stack.kill_worker()
                counts.kills += 1
            elif fault == "temporal":
                await stack.restart_temporal()
                counts.temporal_restarts += 1
            else:
                await stack.postgres_outage(postgres_down_s)
                counts.postgres_outages += 1
        faults_done.set()
        await drivers
    finally:
        drivers.cancel()
    for run_id in run_ids:
        await audit(stack, run_id, tenant, counts, deadline=deadline)
    counts.seconds = round(time.monotonic() - began, 1)
    return counts


async def audit(stack: FaultStack, run_id: str, tenant: str, counts: Counts, *, deadline: float) -> None:
    """Count one run's decisions, Charter and Ledger rows and attempts, replay its history;
    note each problem."""
    assert stack.pool is not None and stack.client is not None
    problems = counts.problems
    handle = stack.client.get_workflow_handle(run_id)
    try:
        # Its status may say completed while its last events are still being written.
        async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
            result = await _retrying(
                f"result of {run_id}", lambda: stack.boomerang.result(run_id), deadline=deadline
            )
    except TimeoutError:
        problems.append(f"{run_id}: not finished by the deadline")
        return
    described = await _retrying(f"describe {run_id}", handle.describe, deadline=deadline)
    if described.status != WorkflowExecutionStatus.COMPLETED:
        problems.append(f"{run_id}: ended {described.status}")
        return
    # A history that the workflow code cannot replay fails every later query of the run.
    replayed = await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
        await handle.fetch_history(), raise_on_replay_failure=False
    )
    if replayed.replay_failure is not None:
        counts.replay_failures += 1
        problems.append(f"{run_id}: its history does not replay: {str(replayed.replay_failure)[:300]}")
    counts.completed += result.status is RunStatus.COMPLETED
    if result.status is not RunStatus.COMPLETED or list(result.outputs) != list(PHASES):
        problems.append(f"{run_id}: ended {result.status.value} with outputs {list(result.outputs)}")
    decided = [d.checkpoint for d in result.decisions]
    counts.decisions_recorded += len(decided)
    if decided != list(CHECKPOINTS):
        problems.append(f"{run_id}: decisions {decided}")

    charter = await charter_for_run(stack.pool, run_id, tenant)
    counts.charter_rows += len(charter)
    seen = Counter((r.event, r.phase, r.checkpoint) for r in charter)
    if seen != expected_events():
        problems.append(
            f"{run_id}: Charter {seen - expected_events()} doubled, {expected_events() - seen} missing"
        )

    async with stack.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, phase, checkpoint, event_key, attempt, status, total_cost"
            " FROM ledger WHERE run_id = %s",
            (run_id,),
        )
        ledger = await cur.fetchall()
    counts.ledger_rows += len(ledger)
    events = Counter((k, p, c) for k, p, c, *_ in ledger if k != "compute_attempt")
    if events != expected_events():
        problems.append(f"{run_id}: Ledger events {events - expected_events()} doubled")
    by_activity: dict[str, list[int]] = {}
    spent = Decimal(0)
    for _, _, _, key, attempt, row_status, cost in (r for r in ledger if r[0] == "compute_attempt"):
        by_activity.setdefault(str(key).rsplit("/", 1)[0], []).append(int(attempt))
        counts.attempts += 1
        counts.lost_attempts += row_status == "lost"
        spent += Decimal(cost or 0)
    for prefix, attempts in by_activity.items():
        if sorted(attempts) != list(range(1, len(attempts) + 1)):
            problems.append(f"{prefix}: attempt rows {sorted(attempts)}")
    for activity_id, attempt in await _completed_dispatches(stack.client, run_id):
        counts.retried_phases += attempt > 1
        got = by_activity.get(f"{run_id}/{activity_id}", [])
        if len(got) != attempt:
            problems.append(f"{run_id} dispatch {activity_id}: {attempt} attempts, {len(got)} rows")
    if await cost_to_date(stack.pool, run_id) != spent:
        problems.append(f"{run_id}: cost_to_date differs from its attempts' sum {spent}")
    report = await verify(stack.pool, run_id)
    counts.verify_rows += report.rows_checked
    if not report.ok:
        problems.append(f"{run_id}: ledger verify: {report.breaks}")


async def _completed_dispatches(client: Client, run_id: str) -> list[tuple[str, int]]:
    """(`<temporal run id>/<activity id>`, attempt) of each of the run's own dispatches that completed."""
    handle = client.get_workflow_handle(run_id)
    first = (await handle.describe()).run_id
    history = await handle.fetch_history()
    scheduled: dict[int, str] = {}
    started: dict[int, int] = {}
    done: list[tuple[str, int]] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "dispatch":
                scheduled[event.event_id] = attrs.activity_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = (
                event.activity_task_started_event_attributes.attempt
            )
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sched = event.activity_task_completed_event_attributes.scheduled_event_id
            if sched in scheduled:
                done.append((f"{first}/{scheduled[sched]}", started[sched]))
    return done
