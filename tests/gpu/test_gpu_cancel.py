"""Cancelling a GPU run kills its command, and the run ends cancelled in the records."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from boomerang.gpu_runs import prepare_gpu_run
from boomerang.gpu_telemetry import read_records, telemetry_path
from tests.gpu.conftest import GpuStackFactory
from tests.gpu.worktrees import git_worktree
from tests.helpers import wait_until


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_a_cancelled_run_kills_its_command(
    dev_env: WorkflowEnvironment, gpu_stack: GpuStackFactory, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"
    inp = prepare_gpu_run(
        [sys.executable, "-c", code, str(pid_file)], workdir=git_worktree(tmp_path / "repo"), store=None,
        task_id="cancel-me",
    ).model_copy(update={"heartbeat_timeout": timedelta(seconds=10)})  # fmt: skip
    async with gpu_stack(dev_env) as s:
        run_id = await s.client.start_gpu_run(inp)

        async def started() -> int | None:
            return int(pid_file.read_text()) if pid_file.exists() and pid_file.read_text() else None

        pid = await wait_until(started, what="the command to start")
        await s.client.temporal.get_workflow_handle(run_id).cancel()
        with pytest.raises(WorkflowFailureError):
            await s.client.temporal.get_workflow_handle(run_id).result()

        async def gone() -> bool | None:
            return True if not _alive(pid) else None

        await wait_until(gone, what=f"the command (pid {pid}) to be killed", timeout_s=30)
    (record,) = read_records(telemetry_path(s.state_dir))
    assert (record.run_id, record.status, record.exit_code) == (run_id, "cancelled", None)
