"""`ledger verify` names every break, always compares anchors, and catches a rewound head;
a Temporal Schedule anchors the Ledger to files outside the database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.anchoring import AnchorActivities
from boomerang.store.anchors import anchor_files, latest_anchor
from boomerang.store.chain import ledger_content, row_hash
from boomerang.store.integrity import HEADS, BreakReason, anchor, verify, verify_against_anchor
from boomerang.store.queries import Pool
from boomerang.store.recorder import EventStore
from tests.helpers import wait_until
from tests.store import execute_as, make_event, paid
from tests.store.test_append_only import _run_of, _tamper
from workflows.anchoring import AnchorLedger, ensure_anchor_schedule


async def _rewrite_consistently(pool: Pool, run: str, seq: int) -> None:
    """What a superuser can do: change a row and recompute its hash and the head's."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT prev_hash, recorded_at FROM ledger WHERE stream = %s AND seq = %s", (run, seq)
        )
        row = await cur.fetchone()
    assert row is not None
    digest = row_hash(ledger_content(make_event(run, seq, cost=paid(gpu="0.01")), seq=seq, prev_hash=row[0],
                                     recorded_at=row[1]))  # fmt: skip
    await _tamper(pool, "UPDATE ledger SET gpu_cost = 0.01, total_cost = 0.26, row_hash = %s"
                  " WHERE stream = %s AND seq = %s", (digest, run, seq))  # fmt: skip
    await _tamper(pool, "UPDATE ledger_heads SET row_hash = %s WHERE stream = %s", (digest, run))


async def test_every_broken_row_of_every_stream_is_named(store_pool: Pool, event_store: EventStore) -> None:
    good, one, two = [await _run_of(event_store, 5) for _ in range(3)]
    await _tamper(store_pool, "UPDATE ledger SET message = 'x' WHERE stream = %s AND seq IN (2, 4)", (one,))
    await _tamper(store_pool, "DELETE FROM ledger WHERE stream = %s AND seq = 3", (two,))
    await _tamper(store_pool, "UPDATE ledger SET message = 'y' WHERE stream = %s AND seq = 5", (two,))
    report = await verify(store_pool)
    found = {(b.stream, b.seq, b.reason) for b in report.breaks}
    assert {(one, 2, BreakReason.HASH_MISMATCH), (one, 4, BreakReason.HASH_MISMATCH),
            (two, 3, BreakReason.MISSING_SEQ), (two, 5, BreakReason.HASH_MISMATCH)} <= found  # fmt: skip
    assert not any(b.stream == good for b in report.breaks)


async def test_a_writer_cannot_rewind_a_head_and_a_forced_rewind_is_named(
    store_pool: Pool, event_store: EventStore
) -> None:
    run = await _run_of(event_store, 4)
    for role in ("boomerang_writer", None):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await execute_as(store_pool, role, "UPDATE ledger_heads SET seq = 2 WHERE stream = %s", (run,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await execute_as(store_pool, role, "DELETE FROM ledger_heads WHERE stream = %s", (run,))
    await _tamper(store_pool, "UPDATE ledger_heads SET seq = 2 WHERE stream = %s", (run,))
    [broken] = (await verify(store_pool, run)).breaks
    assert (broken.seq, broken.reason) == (2, BreakReason.HEAD_MISMATCH) and "moved back" in broken.detail


def _verify_cli(conninfo: str, anchors: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": conninfo, "BOOMERANG_LEDGER_ANCHOR_DIR": str(anchors)}
    return subprocess.run([sys.executable, "-m", "boomerang.cli", "ledger", "verify", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


async def test_anchors_are_compared_even_when_other_rows_are_broken(
    make_database: Any, tmp_path: Path
) -> None:
    from boomerang.store.migrate import apply_migrations
    from boomerang.store.recorder import open_pool

    conninfo = await make_database()
    await apply_migrations(conninfo)
    pool = await open_pool(conninfo)
    try:
        store = EventStore(pool)
        edited, rewritten = await _run_of(store, 3), await _run_of(store, 3)
        heads = await anchor(pool)
        (tmp_path / "anchor.json").write_bytes(HEADS.dump_json(heads))
        await _tamper(pool, "UPDATE ledger SET message = 'x' WHERE stream = %s AND seq = 1", (edited,))
        await _rewrite_consistently(pool, rewritten, 3)  # the last row: nothing after it to fix
        assert {b.stream for b in (await verify(pool)).breaks} == {edited}  # the rewrite passes plain verify
        anchored = await verify_against_anchor(pool, heads)
        assert (rewritten, 3, BreakReason.ANCHOR_MISMATCH) in {
            (b.stream, b.seq, b.reason) for b in anchored.breaks
        }
    finally:
        await pool.close()
    done = _verify_cli(conninfo, tmp_path / "none", "--anchor", str(tmp_path / "anchor.json"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert any(edited in line and "hash_mismatch" in line for line in lines)
    assert any(rewritten in line and "anchor_mismatch" in line for line in lines)
    assert "2 of" in lines[-1] or "in 2 of" in lines[-1]


async def test_a_schedule_anchors_to_files_and_the_next_verify_catches_a_consistent_rewrite(
    dev_env: WorkflowEnvironment, make_database: Any, tmp_path: Path
) -> None:
    from boomerang.store.migrate import apply_migrations
    from boomerang.store.recorder import open_pool

    conninfo = await make_database()
    await apply_migrations(conninfo)
    pool = await open_pool(conninfo)
    anchors = tmp_path / "anchors"
    client: Client = dev_env.client
    task_queue = f"tq-{uuid.uuid4().hex}"
    schedule_id = f"anchor-test-{uuid.uuid4().hex[:8]}"
    try:
        run = await _run_of(EventStore(pool), 3)
        async with Worker(client, task_queue=task_queue, workflows=[AnchorLedger],
                          activities=AnchorActivities(pool, anchors).activities):  # fmt: skip
            await ensure_anchor_schedule(client, task_queue=task_queue, every=timedelta(seconds=2),
                                         schedule_id=schedule_id)  # fmt: skip
            try:
                await wait_until(lambda: _files(anchors, 1), what="a scheduled anchor", timeout_s=60)
            finally:
                await client.get_schedule_handle(schedule_id).delete()
        found = latest_anchor(anchors)
        assert found is not None and any(h.stream == run and h.seq == 3 for h in found[1])
        assert _verify_cli(conninfo, anchors).returncode == 0
        await _rewrite_consistently(pool, run, 3)
        assert (await verify(pool, run)).ok  # invisible inside the database
    finally:
        await pool.close()
    done = _verify_cli(conninfo, anchors)
    assert done.returncode == 1 and f"stream {run} seq 3" in done.stderr and "anchor_mismatch" in done.stderr


async def _files(directory: Path, n: int) -> bool | None:
    return True if len(anchor_files(directory)) >= n else None
