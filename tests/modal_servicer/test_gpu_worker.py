"""A GPU run on the Modal backend survives its worker: SIGKILLed mid-command, it is paid for once.

`python worker.py` with `BOOMERANG_COMPUTE_BACKEND=modal` dispatches `gpu_exec_l4`
through the real SDK to the local Modal; the artifact store is an S3 bucket (moto's
server) because a Modal container can only deliver its artifacts to presigned URLs.
The worker is killed while the command runs; the next worker re-attaches to the same
call: one spawn, the command run once, one costed `compute_attempt` (the killed
attempt's row is a `lost` one at no cost, naming the call that bills it), and the
command's exit code, tails and artifacts come back as if nothing had happened.
"""

from __future__ import annotations

import signal
import sys
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from boomerang.client import BoomerangClient
from boomerang.gpu_runs import prepare_gpu_run
from boomerang.gpu_telemetry import read_records, telemetry_path
from boomerang.store.costs import cost_to_date
from boomerang.store.queries import Pool
from modal_app.gpu_exec import function_name
from tests.fixtures.s3 import S3Bucket
from tests.gpu.evidence import run_artifacts
from tests.gpu.worktrees import git_worktree
from tests.helpers import wait_until
from tests.modal_servicer.servicer import ModalServicer
from tests.test_crash import worker_process

PREFIX = "boomerang"
FUNCTION = function_name("L4")
# Notes each run of it, then waits for the test's go-ahead (a file), and exits 3.
COMMAND = (
    "import os, sys, time; open(sys.argv[1], 'a').write('ran\\n')\n"
    "while not os.path.exists(sys.argv[2]): time.sleep(0.05)\n"
    "print('finished'); print('warn', file=sys.stderr); raise SystemExit(3)"
)


async def _checkpointed_call(env: WorkflowEnvironment, run_id: str) -> str | None:
    """The call id the server holds in the dispatch's heartbeat, once it holds one."""
    desc = await env.client.get_workflow_handle(run_id).describe()
    for pending in desc.raw_description.pending_activities:
        if pending.activity_type.name == "dispatch" and pending.heartbeat_details.payloads:
            details = await env.client.data_converter.decode(pending.heartbeat_details.payloads)
            call_id = details[-1].get("call_id") if isinstance(details[-1], dict) else None
            return str(call_id) if call_id else None
    return None


async def _attempt_rows(pool: Pool, run_id: str) -> list[tuple[int, str, str, Decimal, dict[str, Any]]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT attempt, status, details->>'function', total_cost, details FROM ledger"
            " WHERE run_id = %s AND kind = 'compute_attempt' ORDER BY attempt",
            (run_id,),
        )
        return [(int(a), str(s), str(f), Decimal(c), d) for a, s, f, c, d in await cur.fetchall()]


async def test_a_worker_killed_mid_command_reattaches_and_pays_once(
    dev_env: WorkflowEnvironment,
    pg_conninfo: str,
    store_pool: Pool,
    modal_service: ModalServicer,
    s3_bucket: S3Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state_dir = tmp_path / "state"
    for name, value in {
        "BOOMERANG_COMPUTE_BACKEND": "modal",
        "BOOMERANG_MODAL_POLL_S": "0.3",
        "BOOMERANG_STATE_DIR": str(state_dir),
        "BOOMERANG_ARTIFACTS_URL": f"{s3_bucket.url}/{PREFIX}",
        "BOOMERANG_ARTIFACTS_ENDPOINT": s3_bucket.endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    inp = prepare_gpu_run(
        [sys.executable, "-c", COMMAND, str(runs), str(go)],
        workdir=git_worktree(tmp_path / "repo"),
        store=None,
        task_id="reattach",
        timeout_s=120,
    ).model_copy(update={"heartbeat_timeout": timedelta(seconds=10)})  # the least allowed: a short retry
    task_queue = f"tq-modal-gpu-{uuid.uuid4().hex}"
    client = BoomerangClient(dev_env.client, task_queue=task_queue)
    log = tmp_path / "worker.log"

    async with worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=log) as first:
        run_id = await client.start_gpu_run(inp)
        call_id = await wait_until(
            lambda: _checkpointed_call(dev_env, run_id), what="the call id in the dispatch's heartbeat"
        )

        async def running() -> bool | None:
            return True if runs.exists() and runs.read_text() else None

        await wait_until(running, what="the command to start on the local Modal")
        first.kill()
        assert await first.proc.wait() == -signal.SIGKILL
    assert list(modal_service.calls) == [call_id]
    polls_before = modal_service.polls

    async with worker_process(dev_env, task_queue=task_queue, conninfo=pg_conninfo, log=log):
        # A poll from the new worker (the old one is dead): it re-attached to the call.
        await modal_service.until(lambda: modal_service.polls > polls_before, timeout_s=60)
        go.touch()
        outcome = await client.gpu_run_result(run_id)

    assert (outcome.status, outcome.exit_code, outcome.timed_out) == ("completed", 3, False)
    assert (outcome.stdout_tail, outcome.stderr_tail) == ("finished\n", "warn\n")
    # One spawn, never cancelled, and the command itself ran once.
    assert list(modal_service.calls) == [call_id] and modal_service.cancelled == []
    assert modal_service.calls[call_id].function == FUNCTION
    assert runs.read_text() == "ran\n"
    # One paid attempt: the re-attached one bills the call; the killed one is settled at no cost.
    (lost, paid) = await _attempt_rows(store_pool, run_id)
    assert lost[:4] == (1, "lost", FUNCTION, Decimal(0)) and lost[4]["call_id"] == call_id
    assert paid[:3] == (2, "ok", FUNCTION) and paid[3] > 0
    assert outcome.cost_usd == paid[3] == await cost_to_date(store_pool, run_id)
    # The container's artifacts reached the bucket through presigned PUT URLs.
    run = run_artifacts(s3_bucket, PREFIX, outcome)
    assert (run.files["stdout.log"], run.files["stderr.log"]) == (b"finished\n", b"warn\n")
    assert (run.metadata["run_id"], run.metadata["exit_code"]) == (run_id, 3)
    (record,) = read_records(telemetry_path(state_dir))
    assert (record.run_id, record.status, record.exit_code) == (run_id, "completed", 3)
    assert (record.artifact_uri, Decimal(record.cost_usd)) == (outcome.artifact_uri, paid[3])
