"""Sweeps end to end: real Temporal dev server, real Postgres, local compute processes."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.artifacts import LocalArtifactStore
from boomerang.constants import SWEEP_WORKFLOW
from boomerang.models.sweeps import SweepInput, SweepProgress, SweepResult, SweepSpec
from boomerang.pricing import load_price_table
from boomerang.store.costs import LedgerCosts
from boomerang.store.queries import Pool, charter_for_run
from boomerang.store.sweeps import SweepResults
from boomerang.sweeps import estimate_sweep, resolve_sweep
from modal_app.registry import load_registry
from tests.helpers import wait_until
from tests.test_crash import worker_process
from worker import build_worker
from workflows.sweep_plan import SweepSpecError

MODULES = ("tests.sweep_functions",)
Start = Callable[[SweepSpec], AbstractAsyncContextManager[WorkflowHandle[Any, SweepProgress]]]


@pytest.fixture(scope="module")
async def probe_backend() -> AsyncIterator[LocalBackend]:
    b = LocalBackend(max_concurrency=8, registry=load_registry(MODULES))
    yield b
    await b.aclose()


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    return tmp_path / "probe"


@pytest.fixture
def run_sweep(
    dev_env: WorkflowEnvironment, probe_backend: LocalBackend, event_store: EventSink, store_pool: Pool,
    tmp_path: Path,
) -> Start:  # fmt: skip
    @asynccontextmanager
    async def start(spec: SweepSpec) -> AsyncIterator[WorkflowHandle[Any, SweepProgress]]:
        task_queue = f"tq-{uuid.uuid4().hex}"
        async with build_worker(
            dev_env.client,
            task_queue=task_queue,
            backend=probe_backend,
            events=event_store,
            costs=LedgerCosts(store_pool),
            sweeps=(SweepResults(store_pool), LocalArtifactStore(tmp_path / "artifacts")),
        ):
            yield await _start(dev_env.client, spec, task_queue)

    return start


async def _start(client: Client, spec: SweepSpec, task_queue: str) -> WorkflowHandle[Any, SweepProgress]:
    resolve_sweep(spec, load_registry(MODULES))  # what every front door does first
    return await client.start_workflow(
        SWEEP_WORKFLOW,
        SweepInput(tenant="acme", spec=spec),
        id=f"sweep-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
        result_type=SweepProgress,
    )


def _probe(probe_dir: Path, **kw: Any) -> dict[str, Any]:
    return {"probe_dir": str(probe_dir), **kw}


def _log(probe_dir: Path) -> list[tuple[str, int, str, int]]:
    lines = (probe_dir / "log").read_text().split("\n")
    out = []
    for line in lines:
        if line:
            kind, x, batch, n = line.split(" ")
            out.append((kind, int(x), batch, int(n)))
    return out


async def _rows(pool: Pool, sweep_id: str) -> list[SweepResult]:
    return [r async for r in SweepResults(pool).rows(sweep_id)]


def _scheduled(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def _ledger(pool: Pool, sweep_id: str) -> list[tuple[int, str]]:
    """(item index, status) of every compute attempt of the sweep in the Ledger."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT event_key, status FROM ledger WHERE run_id = %s AND kind = 'compute_attempt'",
            (sweep_id,),
        )
        found = await cur.fetchall()
    return sorted((int(re.findall(r"/item-(\d+)/", str(k))[0]), str(s)) for k, s in found)


async def _progress(handle: WorkflowHandle[Any, SweepProgress]) -> SweepProgress:
    return await handle.query("progress", result_type=SweepProgress)


async def test_window_batches_results_and_continue_as_new(
    run_sweep: Start, probe_dir: Path, store_pool: Pool
) -> None:
    spec = SweepSpec(
        function="sweep_probe",
        grid={"batch": ["a", "b", "c"], "x": list(range(6))},
        base=_probe(probe_dir, sleep_s=0.1),
        max_parallel=3,
        batch_by="batch",
        items_per_run=7,  # 18 items: three runs, continue-as-new twice
        expected_seconds=0.05,  # chunks of two items from the start
    )
    async with run_sweep(spec) as handle:
        final = await handle.result()
    assert (final.status, final.total, final.done, final.failed, final.runs) == ("completed", 18, 18, 0, 3)
    assert [(b.key, b.done, b.total) for b in final.batches] == [("a", 6, 6), ("b", 6, 6), ("c", 6, 6)]
    assert {a.value: a.done for a in final.axes["x"]} == {str(i): 3 for i in range(6)}

    log = _log(probe_dir)
    # The window, measured inside the compute function: reached, never exceeded.
    assert max(n for kind, _, _, n in log if kind == "start") == 3
    # Batches never overlap: every start of batch k+1 comes after every end of batch k.
    for earlier, later in (("a", "b"), ("b", "c")):
        last_end = max(i for i, (k, _, b, _) in enumerate(log) if k == "end" and b == earlier)
        first_start = min(i for i, (k, _, b, _) in enumerate(log) if k == "start" and b == later)
        assert last_end < first_start
    # Every item once, in the results table, with its output.
    rows = await _rows(store_pool, handle.id)
    assert [r.item_index for r in rows] == list(range(18))
    assert all(r.status == "succeeded" and r.output == {"y": int(str(r.params["x"])) ** 2} for r in rows)
    assert sum(1 for k, *_ in log if k == "start") == 18
    # The Charter: one row per batch, none per item.
    events = [r.event for r in await charter_for_run(store_pool, handle.id, "acme")]
    assert events.count("sweep_batch_completed") == 3
    assert events[0] == "sweep_started" and events[-1] == "sweep_completed"
    # History stays bounded: the last run holds a fraction of the items' events.
    history = await handle.fetch_history()
    assert len(history.events) < 120
    # Its 4 items went out in fewer activities than items.
    assert 1 <= _scheduled(history).count("run_sweep_chunk") < 4


async def test_chunks_of_several_lanes_fill_the_window_and_never_pass_it(
    run_sweep: Start, probe_dir: Path, store_pool: Pool
) -> None:
    spec = SweepSpec(
        function="sweep_probe",
        grid={"x": list(range(30))},
        base=_probe(probe_dir, sleep_s=0.3),
        max_parallel=6,  # the test backend has 8 compute processes
        expected_seconds=0.1,  # 3 chunks of 10 items, 2 lanes each
    )
    seen: list[SweepProgress] = []
    async with run_sweep(spec) as handle:
        result = asyncio.ensure_future(handle.result())
        while not result.done():
            seen.append(await _progress(handle))
            await asyncio.wait({result}, timeout=0.05)
        final = await result
    assert (final.status, final.done, final.running, final.pending) == ("completed", 30, 0, 0)
    log = _log(probe_dir)
    assert max(n for kind, _, _, n in log if kind == "start") == 6  # measured inside the function
    assert sum(1 for k, *_ in log if k == "start") == 30
    assert [r.item_index for r in await _rows(store_pool, handle.id)] == list(range(30))
    # The progress: calls running at most the window; items of chunks in flight are pending.
    assert max(p.running for p in seen) == 6
    assert all(p.done + p.failed + p.running + p.pending == 30 for p in seen)
    assert _scheduled(await handle.fetch_history()).count("run_sweep_chunk") == 3


async def test_partial_failure_continue_and_stop(run_sweep: Start, probe_dir: Path, store_pool: Pool) -> None:
    items = [_probe(probe_dir, x=i, fail=i in (2, 5), flaky=i == 3, sleep_s=0.01) for i in range(8)]
    # expected_seconds: chunks of two items; item 3 fails once (retryably) and succeeds on its
    # retry inside its chunk; 2 and 5 fail for good (a ValueError is permanent: no retry).
    spec = SweepSpec(function="sweep_probe", items=items, max_parallel=4, retries=1, expected_seconds=0.01)
    async with run_sweep(spec) as handle:
        final = await handle.result()
    assert (final.status, final.done, final.failed) == ("completed", 6, 2)
    rows = await _rows(store_pool, handle.id)
    failed = [r for r in rows if r.status == "failed"]
    assert [r.item_index for r in failed] == [2, 5]
    assert all("fails on purpose" in (r.error or "") and r.attempts == 1 for r in failed)
    assert [r.attempts for r in rows if r.item_index == 3] == [2]
    # Every try is a Ledger row.
    expected = sorted(
        [(i, "ok") for i in range(8) if i not in (2, 5)] + [(2, "failed"), (3, "failed"), (5, "failed")]
    )
    assert await _ledger(store_pool, handle.id) == expected

    stop_dir = probe_dir.parent / "stop"
    items = [_probe(stop_dir, x=i, fail=i == 1, sleep_s=0.01) for i in range(6)]
    spec = SweepSpec(function="sweep_probe", items=items, max_parallel=1, on_item_failure="stop", retries=0)
    async with run_sweep(spec) as handle:
        final = await handle.result()
    assert (final.status, final.done, final.failed, final.pending) == ("stopped", 1, 1, 4)
    assert "item 1 failed" in (final.reason or "")
    assert [r.item_index for r in await _rows(store_pool, handle.id)] == [0, 1]


async def test_large_items_make_smaller_chunks(run_sweep: Start, probe_dir: Path, store_pool: Pool) -> None:
    # 20 items of about 40 KB on the wire each: a chunk stops short of MAX_CHUNK_BYTES (256 KiB).
    items = [_probe(probe_dir, x=i, batch="b" * 20_000, sleep_s=0.01) for i in range(20)]
    spec = SweepSpec(function="sweep_probe", items=items, max_parallel=1, expected_seconds=0.01)
    async with run_sweep(spec) as handle:
        final = await handle.result()
    assert (final.status, final.done) == ("completed", 20)
    assert [r.item_index for r in await _rows(store_pool, handle.id)] == list(range(20))
    assert _scheduled(await handle.fetch_history()).count("run_sweep_chunk") == 4  # 6 + 6 + 6 + 2


async def test_large_output_goes_to_the_artifact_store(
    run_sweep: Start, probe_dir: Path, store_pool: Pool, tmp_path: Path
) -> None:
    spec = SweepSpec(function="sweep_probe", items=[_probe(probe_dir, x=3, big=True, sleep_s=0)])
    async with run_sweep(spec) as handle:
        await handle.result()
    (row,) = await _rows(store_pool, handle.id)
    assert row.output is None and row.artifact_uri
    store = LocalArtifactStore(tmp_path / "artifacts")
    assert store.list(f"sweeps/{handle.id}/") == [f"sweeps/{handle.id}/item-000000.json"]
    assert b'"y": 9' in store.get(f"sweeps/{handle.id}/item-000000.json")


async def test_cost_cap_waits_for_approval(run_sweep: Start, probe_dir: Path, store_pool: Pool) -> None:
    spec = SweepSpec(
        function="sweep_probe",
        grid={"x": list(range(6))},
        base=_probe(probe_dir, sleep_s=0.2),
        max_parallel=2,
        max_cost_usd=Decimal("0.0000001"),
        expected_seconds=1,
    )
    async with run_sweep(spec) as handle:

        async def waiting() -> SweepProgress | None:
            p = await _progress(handle)
            return p if p.status == "awaiting_approval" else None

        paused = await wait_until(waiting, what="the budget checkpoint")
        assert paused.awaiting == ["approve_budget_increase"] and paused.done == 0 and paused.running == 0
        assert not (probe_dir / "log").exists()  # nothing dispatched past the cap
        receipt = await handle.execute_update(
            "decide",
            {"checkpoint": "approve_budget_increase", "approver": "finn", "budget_usd": "100"},
        )
        assert receipt["status"] == "applied"
        final = await handle.result()
    assert (final.status, final.done, final.max_cost_usd) == ("completed", 6, Decimal(100))
    events = [r.event for r in await charter_for_run(store_pool, handle.id, "acme")]
    assert "checkpoint_opened" in events and "checkpoint_decided" in events


async def _probes_started(probe_dir: Path, count: int) -> None:
    """Wait until `count` probe items have started (each writes `start` to the log)."""

    async def started() -> bool | None:
        log = (probe_dir / "log").read_text() if (probe_dir / "log").exists() else ""
        return True if log.count("start") == count else None

    await wait_until(started, what=f"{count} items running")


async def test_cancel_stops_in_flight_calls(run_sweep: Start, probe_dir: Path, store_pool: Pool) -> None:
    spec = SweepSpec(
        function="sweep_probe", grid={"x": list(range(10))}, base=_probe(probe_dir, sleep_s=60),
        max_parallel=2,
        heartbeat_timeout_s=3,
    )  # fmt: skip
    async with run_sweep(spec) as handle:
        await _probes_started(probe_dir, 2)
        receipt = await handle.execute_update("cancel", {"by": "alice", "reason": "enough"})
        assert receipt["status"] == "applied"
        final = await handle.result()
    assert (final.status, final.cancelled, final.done, final.running) == ("cancelled", 2, 0, 0)
    rows = await _rows(store_pool, handle.id)
    assert [(r.item_index, r.status) for r in rows] == [(0, "cancelled"), (1, "cancelled")]
    assert "end" not in (probe_dir / "log").read_text()  # the compute processes were killed
    async with store_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT status FROM ledger WHERE run_id = %s AND kind = 'compute_attempt'", (handle.id,)
        )
        assert sorted(r[0] for r in await cur.fetchall()) == ["cancelled", "cancelled"]


async def test_cancel_of_chunks_keeps_unstarted_items_pending(
    run_sweep: Start, probe_dir: Path, store_pool: Pool
) -> None:
    spec = SweepSpec(
        function="sweep_probe", grid={"x": list(range(10))}, base=_probe(probe_dir, sleep_s=60),
        max_parallel=2, heartbeat_timeout_s=3,
        expected_seconds=0.1,  # two chunks of several items, one lane each: items 0-4 and 5-7
    )  # fmt: skip
    async with run_sweep(spec) as handle:
        await _probes_started(probe_dir, 2)
        assert (await _progress(handle)).running == 2
        receipt = await handle.execute_update("cancel", {"by": "alice", "reason": "enough"})
        assert receipt["status"] == "applied"
        final = await handle.result()
    assert (final.status, final.cancelled, final.done, final.running, final.pending) == (
        "cancelled",
        2,
        0,
        0,
        8,
    )
    rows = await _rows(store_pool, handle.id)
    assert [(r.item_index, r.status) for r in rows] == [(0, "cancelled"), (5, "cancelled")]
    assert "end" not in (probe_dir / "log").read_text()  # the compute processes were killed
    assert await _ledger(store_pool, handle.id) == [(0, "cancelled"), (5, "cancelled")]


class _OwnsHeartbeat:
    """The probe backend as a backend that owns the activity heartbeat (as Modal's does)."""

    heartbeats_itself = True

    def __init__(self, inner: LocalBackend) -> None:
        self._inner = inner
        self.registry = inner.registry

    async def call(self, name: str, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self._inner.call(name, payload, **kw)

    async def aclose(self) -> None:
        """The fixture closes the inner backend."""


async def test_a_backend_that_owns_the_heartbeat_gets_one_activity_per_item(
    dev_env: WorkflowEnvironment, probe_backend: LocalBackend, event_store: EventSink, store_pool: Pool,
    probe_dir: Path, tmp_path: Path,
) -> None:  # fmt: skip
    task_queue = f"tq-{uuid.uuid4().hex}"
    spec = SweepSpec(
        function="sweep_probe", grid={"x": list(range(6))}, base=_probe(probe_dir, sleep_s=0.05),
        max_parallel=2, expected_seconds=0.05,
    )  # fmt: skip
    async with build_worker(
        dev_env.client, task_queue=task_queue, backend=_OwnsHeartbeat(probe_backend), events=event_store,
        costs=LedgerCosts(store_pool), sweeps=(SweepResults(store_pool), LocalArtifactStore(tmp_path / "a")),
    ):  # fmt: skip
        handle = await _start(dev_env.client, spec, task_queue)
        final = await handle.result()
    assert (final.status, final.done) == ("completed", 6)
    scheduled = _scheduled(await handle.fetch_history())
    assert scheduled.count("run_sweep_item") == 6 and "run_sweep_chunk" not in scheduled
    assert max(n for kind, _, _, n in _log(probe_dir) if kind == "start") == 2


async def test_worker_killed_mid_sweep_loses_and_repeats_nothing(
    dev_env: WorkflowEnvironment, pg_conninfo: str, store_pool: Pool, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    probe_dir = tmp_path / "probe"
    monkeypatch.setenv("BOOMERANG_COMPUTE_MODULES", ",".join(MODULES))
    monkeypatch.setenv("BOOMERANG_STATE_DIR", str(tmp_path / "state"))
    task_queue = f"tq-{uuid.uuid4().hex}"
    spec = SweepSpec(
        function="sweep_probe", grid={"x": list(range(12))}, base=_probe(probe_dir, sleep_s=0.4),
        max_parallel=3, heartbeat_timeout_s=2, items_per_run=5,
        expected_seconds=0.2,  # chunks of two items: the kill lands inside chunks
    )  # fmt: skip
    async with worker_process(
        dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=tmp_path / "w1.log"
    ) as w1:
        handle = await _start(dev_env.client, spec, task_queue)

        async def some_done() -> bool | None:
            return True if len(await _rows(store_pool, handle.id)) >= 4 else None

        await wait_until(some_done, what="four items done")
        w1.kill()
        await w1.proc.wait()
    done_before = {r.item_index for r in await _rows(store_pool, handle.id)}
    async with worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=tmp_path / "w2.log"):
        final = await asyncio.wait_for(handle.result(), 60)
    assert (final.status, final.done, final.failed) == ("completed", 12, 0)
    rows = await _rows(store_pool, handle.id)
    assert [r.item_index for r in rows] == list(range(12))
    # No item that had succeeded ran again: its x ends exactly once in the compute log.
    ends = [x for kind, x, _, _ in _log(probe_dir) if kind == "end"]
    assert all(ends.count(i) == 1 for i in done_before)
    assert sorted(set(ends)) == list(range(12))
    # ...and has exactly one ok attempt in the Ledger; tries killed with the worker are `lost`.
    ledger = await _ledger(store_pool, handle.id)
    assert all(ledger.count((i, "ok")) == 1 for i in done_before)
    assert {s for _, s in ledger} <= {"ok", "lost"} and all((i, "ok") in ledger for i in range(12))


# -- bad input: refused before anything starts --------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"function": "nope", "grid": {"x": [1]}}, "no compute function 'nope'"),
        ({"task_type": "juggling", "grid": {"x": [1]}}, "no specialist handles task type 'juggling'"),
        ({"function": "sweep_simulate", "grid": {}}, "the grid is empty"),
        ({"function": "sweep_simulate", "grid": {"steps": []}}, "axis 'steps' has no values"),
        ({"function": "sweep_simulate", "grid": {"steps": [1]}, "batch_by": "seed"}, "batch_by axis 'seed'"),
        ({"function": "sweep_simulate", "grid": {"steps": [1]}, "max_parallel": 0}, "max_parallel must be"),
        ({"function": "sweep_simulate", "grid": {"a": list(range(400)), "b": list(range(400))}}, "100,000"),
        (
            {"function": "sweep_simulate", "items": [{"steps": 1}, {"steps": -1}, {"walkers": "many"}]},
            "2 of 3 items do not fit sweep_simulate's payload",
        ),
        # By task type, each item is a task's payload and must fit what the specialist takes.
        (
            {"task_type": "data_analysis", "items": [{"columns": {"x": [1.0]}}, {"prompt": "hi"}]},
            "1 of 2 items do not fit task_crunch_ang's payload: item 1: payload.prompt: Extra inputs",
        ),
        (
            {"task_type": "research", "items": [{"topic": ""}]},
            "1 of 1 items do not fit task_scout_ang's payload: item 0: payload.topic: String should have",
        ),
    ],
)  # fmt: skip
def test_bad_input_is_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SweepSpecError, match=message.replace("(", r"\(")):
        resolve_sweep(SweepSpec.model_validate(spec), load_registry())


def test_estimate() -> None:
    spec = SweepSpec(
        function="sweep_simulate",
        grid={"walkers": [100, 1000], "steps": [10, 100, 1000], "seed": [1, 2]},
        max_parallel=4,
        batch_by="seed",
        expected_seconds=2,
    )
    est = estimate_sweep(resolve_sweep(spec, load_registry()), load_price_table(env={}))
    assert (est.items, est.batches, est.expected_compute_seconds) == (12, 2, 24)
    assert est.expected_wall_seconds == 2 * 2 * 2  # two batches of 6 items, 4 at a time: 2 rounds each
    assert est.expected_cost_usd > 0
