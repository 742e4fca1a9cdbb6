"""Benchmark: a `Sweep` beside a plain asyncio loop over the same function body.

    .venv/bin/python -m bench.bench_sweep                                # the issue's sizes
    .venv/bin/python -m bench.bench_sweep --items 200 --instant-items 1000  # smaller

Everything is embedded and real (bench/stack.py): the Temporal dev server on a SQLite
file in WAL mode, PostgreSQL from pgserver, the worker in this process with the local
compute backend. The function is `sweep_simulate` with `sleep_s` (a 100 ms item on one
walker and one step: the figures are the overhead, not NumPy's).

1. Window: `--items` items of `--item-ms`, `--window` in flight, three ways in one run:
   - direct body: an asyncio loop, a semaphore of `--window`, calling the body
     (`modal_app.simulation.simulate`) in a pool of `--window` threads, no Temporal;
   - direct backend: the same loop calling the worker's compute processes
     (`LocalBackend.call`), no Temporal;
   - Sweep: the workflow, items in chunks (`run_sweep_chunk`: consecutive items,
     `lanes` at a time, sized by workflows/sweep_chunking.py), every item costed in the
     Ledger with a row in `sweep_results`, continue-as-new every 1,000 items.
   The compute processes are started (warm) before anything is timed, as warm
   containers would be. The ratio is Sweep / direct body. A breakdown follows: the
   sweep's workflow tasks and activities (its history), and PostgreSQL write
   transactions per Ledger row while it ran (bench/breakdown.py).
2. Scale: `--instant-items` items that do no work (0 ms), window `--window`:
   items/s, and this process's resident memory (the worker: workflow, activities,
   client) sampled every 0.25 s: at start, its peak, and at each tenth of the sweep,
   to show that it stays flat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.limits import ConcurrencyLimits
from activities.local_backend import LocalBackend
from bench.breakdown import Breakdown, PgCounter
from bench.stack import embedded_stack
from boomerang.artifacts import LocalArtifactStore
from boomerang.client import BoomerangClient
from boomerang.models.sweeps import SweepProgress, SweepSpec
from boomerang.store.costs import LedgerCosts
from boomerang.store.queries import Pool
from boomerang.store.recorder import EventStore
from boomerang.store.sweeps import SweepResults
from modal_app.simulation import SimulationRequest, simulate
from worker import build_worker

FUNCTION = "sweep_simulate"
TENANT = "bench"


def rss_mib() -> float:
    """This process's resident set size (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    """CPU time of this process so far (every thread: asyncio, the workflow sandbox, the SDK core)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def payload(index: int, sleep_s: float) -> dict[str, Any]:
    return {"walkers": 1, "steps": 1, "seed": index, "sleep_s": sleep_s}


async def direct_body(items: int, window: int, sleep_s: float) -> float:
    gate = asyncio.Semaphore(window)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=window) as threads:

        async def one(i: int) -> None:
            async with gate:
                await loop.run_in_executor(threads, simulate, SimulationRequest(**payload(i, sleep_s)))

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(items)))
        return time.perf_counter() - started


async def direct_backend(backend: LocalBackend, items: int, window: int, sleep_s: float) -> float:
    gate = asyncio.Semaphore(window)

    async def one(i: int) -> None:
        async with gate:
            await backend.call(FUNCTION, payload(i, sleep_s), timeout_s=600)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(items)))
    return time.perf_counter() - started


async def run_sweep(
    client: BoomerangClient, items: int, window: int, sleep_s: float, *, each: Callable[[SweepProgress], None]
) -> tuple[float, SweepProgress]:
    spec = SweepSpec(
        function=FUNCTION,
        grid={"seed": list(range(items))},
        base={"walkers": 1, "steps": 1, "sleep_s": sleep_s},
        max_parallel=window,
        retries=0,
        expected_seconds=max(sleep_s, 0.001),
    )
    started = time.perf_counter()
    sweep_id = await client.start_sweep(spec, tenant=TENANT)
    handle = client.temporal.get_workflow_handle(sweep_id, result_type=SweepProgress)
    done = asyncio.create_task(handle.result())
    while not done.done():
        await asyncio.wait({done}, timeout=0.25)
        if not done.done():
            with contextlib.suppress(Exception):  # a query can miss at continue-as-new; the next answers
                each(await client.sweep_progress(sweep_id))
    final = await done
    return time.perf_counter() - started, final


async def warm(backend: LocalBackend, window: int) -> None:
    """Start `window` compute processes, as a warm pool of containers would be."""
    await asyncio.gather(*(backend.call(FUNCTION, payload(i, 0.2), timeout_s=600) for i in range(window)))


def _report(label: str, seconds: float, items: int) -> None:
    print(f"  {label:<16} {seconds:7.2f} s  ({items / seconds:6.1f} items/s)")


async def main(args: argparse.Namespace) -> None:
    sleep_s = args.item_ms / 1000
    backend = LocalBackend(max_concurrency=args.window, limits=ConcurrencyLimits())
    pool: Pool
    async with embedded_stack(pool_size=args.window + 10) as (env, pool):
        client_t: Client = env.client
        task_queue = f"bench-sweep-{uuid.uuid4().hex[:8]}"
        with tempfile.TemporaryDirectory(prefix="boomerang-bench-artifacts-") as artifacts:
            async with build_worker(
                client_t, task_queue=task_queue, backend=backend, events=EventStore(pool),
                costs=LedgerCosts(pool), sweeps=(SweepResults(pool), LocalArtifactStore(Path(artifacts))),
            ):  # fmt: skip
                client = BoomerangClient(client_t, task_queue=task_queue)
                t0 = time.perf_counter()
                await warm(backend, args.window)
                print(f"warm-up: {args.window} compute processes in {time.perf_counter() - t0:.1f} s")
                await _window(args, backend, client, sleep_s, pool)
                if args.instant_items:
                    await _scale(args, client)
    await backend.aclose()


async def _window(
    args: argparse.Namespace, backend: LocalBackend, client: BoomerangClient, sleep_s: float, pool: Pool
) -> None:
    n, w = args.items, args.window
    print(f"\n{n} items of {args.item_ms:g} ms, window {w} (ideal {n / w * sleep_s:.2f} s):")
    body = await direct_body(n, w, sleep_s)
    _report("direct body", body, n)
    cpu = cpu_seconds()
    via_backend = await direct_backend(backend, n, w, sleep_s)
    backend_cpu, cpu = cpu_seconds() - cpu, cpu_seconds()
    _report("direct backend", via_backend, n)
    peak = 0

    def each(p: SweepProgress) -> None:
        nonlocal peak
        peak = max(peak, p.running)

    pg = await PgCounter.start(pool)
    swept, final = await run_sweep(client, n, w, sleep_s, each=each)
    txns, rows = await pg.per_event()
    sweep_cpu = cpu_seconds() - cpu
    _report("Sweep", swept, n)
    print(f"  Sweep: {final.status}, {final.done} done, {final.failed} failed, {final.runs} runs; "
          f"peak running seen {peak}")  # fmt: skip
    if final.runs == 1:  # the history of the last run only, otherwise
        cost = await Breakdown.of(client.temporal, [final.sweep_id])
        print(f"  Sweep: {cost.workflow_tasks:.0f} workflow tasks, {cost.activities:.0f} activities"
              f" for {n} items; {txns:.2f} PostgreSQL write transactions"
              f" per Ledger row ({rows} rows)")  # fmt: skip
    print(f"  this process's CPU (the worker; not the servers' nor the compute processes'):"
          f" direct backend {backend_cpu * 1000 / n:.2f} ms/item, Sweep {sweep_cpu * 1000 / n:.2f} ms/item;"
          f" load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"  ratio Sweep / direct body: {swept / body:.2f}x;"
          f"  Sweep / direct backend: {swept / via_backend:.2f}x")  # fmt: skip


async def _scale(args: argparse.Namespace, client: BoomerangClient) -> None:
    n, w = args.instant_items, args.window
    print(f"\n{n} instant items, window {w}:")
    samples: list[tuple[float, float]] = []  # (share done, RSS MiB)
    start_rss = rss_mib()
    peak_rss = start_rss

    def each(p: SweepProgress) -> None:
        nonlocal peak_rss
        rss = rss_mib()
        peak_rss = max(peak_rss, rss)
        samples.append(((p.done + p.failed) / max(p.total, 1), rss))

    swept, final = await run_sweep(client, n, w, 0.0, each=each)
    print(f"  {final.status}: {final.done} done, {final.failed} failed, {final.runs} runs (continue-as-new)")
    _report("Sweep", swept, n)
    tenths = []
    for k in range(1, 11):
        at = [rss for share, rss in samples if share >= k / 10 - 0.05]
        tenths.append(f"{at[0]:.0f}" if at else "-")
    print(f"  worker RSS: {start_rss:.0f} MiB at start, peak {peak_rss:.0f} MiB;"
          f" by tenth done: {' '.join(tenths)}")  # fmt: skip


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1000, help="items of the window comparison")
    parser.add_argument("--item-ms", type=float, default=100, help="each item's wall time there")
    parser.add_argument(
        "--window", type=int, default=50, help="max_parallel, and the direct loops' semaphore"
    )
    parser.add_argument("--instant-items", type=int, default=10_000, help="items of the scale run (0: skip)")
    args = parser.parse_args(argv)
    if min(args.items, args.window) < 1 or args.item_ms < 0 or args.instant_items < 0:
        parser.error("--items and --window must be at least 1; --item-ms and --instant-items not negative")
    return args


def run() -> None:
    args = parse()
    code = 0
    try:
        asyncio.run(main(args))
    except KeyboardInterrupt:
        code = 130
    # temporalio can abort at interpreter exit (sdk-python #300): leave with our own status.
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
