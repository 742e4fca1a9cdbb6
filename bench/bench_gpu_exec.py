"""Benchmark: what `boomerang gpu exec -- true` adds over running `true` in a fresh copy of the tree.

    .venv/bin/python -m bench.bench_gpu_exec              # 20 runs each, a small and a 50 MB worktree
    .venv/bin/python -m bench.bench_gpu_exec --runs 5 --sizes-mb 0 10

Everything is embedded and real (bench/stack.py): the Temporal dev server on SQLite
(WAL), PostgreSQL from pgserver, the worker in this process on the local backend, the
artifact store in a temp state dir. For each worktree (a git repo with a few source
files, plus N MB of incompressible untracked data), three ways to run `true`, in turn:
  - direct: unpack the tree's snapshot into a fresh temp dir and run `true` there
    (the baseline: what a run needs at the least);
  - client: `BoomerangClient.gpu_exec` in this process (pack, store if over 256 KiB,
    GpuRun -> dispatch -> artifacts -> telemetry -> Ledger/Charter -> result);
  - cli: `boomerang gpu exec -- true` as a subprocess (adds the CLI's interpreter start).
p50/p95 of wall time per run, and the overhead over direct.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.worker import Worker

from activities.gpu_runs import GpuRunActivities
from activities.local_backend import LocalBackend
from bench.stack import embedded_stack
from boomerang.artifacts import LocalArtifactStore
from boomerang.client import BoomerangClient
from boomerang.snapshots import pack_snapshot
from boomerang.store.recorder import EventStore
from worker import build_activities
from workflows.gpu_run import GpuRun
from workflows.warm_policy import GpuWarmPolicy

BOOMERANG = Path(sys.executable).parent / "boomerang"


def make_tree(root: Path, data_mb: int) -> Path:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("*.pyc\n")
    for i in range(20):
        (root / f"module_{i}.py").write_text(f"VALUE = {i}\n" * 50)
    for i in range(data_mb):
        (root / f"data_{i:03d}.bin").write_bytes(os.urandom(1024 * 1024))
    return root


def direct(snapshot: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(snapshot), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        subprocess.run(["true"], cwd=tmp, check=True)


async def timed(runs: int, once: Callable[[], Awaitable[None]]) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await once()
        out.append(time.perf_counter() - t0)
    return out


def p(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


async def main(runs: int, sizes_mb: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="boomerang-bench-gpu-") as tmp:
        state = Path(tmp) / "state"
        store = LocalArtifactStore(state / "artifacts")
        backend = LocalBackend(max_concurrency=2)
        async with embedded_stack() as (env, pool):
            gpu = GpuRunActivities(store=store, state_dir=state)
            task_queue = f"bench-gpu-{uuid.uuid4().hex[:8]}"
            async with Worker(
                env.client, task_queue=task_queue, workflows=[GpuRun, GpuWarmPolicy],
                activities=[*build_activities(backend, EventStore(pool)), *gpu.activities],
            ):  # fmt: skip
                client = BoomerangClient(env.client, task_queue=task_queue)
                cli_env = {
                    **os.environ, "BOOMERANG_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                    "BOOMERANG_TEMPORAL_TASK_QUEUE": task_queue, "BOOMERANG_STATE_DIR": str(state),
                }  # fmt: skip
                print(f"{'tree':>10} {'way':>7} {'p50 s':>8} {'p95 s':>8} {'p50 overhead s':>15}")
                for mb in sizes_mb:
                    tree = make_tree(Path(tmp) / f"tree-{mb}", mb)
                    snap = pack_snapshot(tree)
                    label = f"{snap.size / 1e6:.1f}MB" if mb else f"{snap.size / 1e3:.0f}KB"

                    async def via_client(tree: Path = tree) -> None:
                        out = await client.gpu_exec(["true"], workdir=tree, store=store, task_id="bench")
                        assert out.exit_code == 0

                    async def via_cli(tree: Path = tree) -> None:
                        proc = await asyncio.create_subprocess_exec(
                            str(BOOMERANG), "gpu", "exec", "--workdir", str(tree), "--task-id", "bench",
                            "--", "true", env=cli_env,
                            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                        )  # fmt: skip
                        assert await proc.wait() == 0

                    async def via_direct(data: bytes = snap.data) -> None:
                        await asyncio.to_thread(direct, data)

                    await via_client()  # warm the compute process and the policy workflow
                    base = await timed(runs, via_direct)
                    for way, fn in (("direct", via_direct), ("client", via_client), ("cli", via_cli)):
                        t = base if way == "direct" else await timed(runs, fn)
                        over = p(t, 50) - p(base, 50)
                        print(f"{label:>10} {way:>7} {p(t, 50):8.3f} {p(t, 95):8.3f} {over:15.3f}")
        await backend.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[0, 50])
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.sizes_mb))
    sys.stdout.flush()
    os._exit(0)  # temporalio can abort at interpreter exit (sdk-python #300)
