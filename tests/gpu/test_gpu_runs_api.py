"""GPU runs over HTTP and from Python: the same GpuRun, its exit code back, bad input refused."""

from __future__ import annotations

import base64
import os
import sys
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from boomerang.api import create_app
from boomerang.gpu_runs import GpuRunInputError
from boomerang.settings import Settings
from boomerang.snapshots import pack_snapshot
from boomerang.store.queries import Pool
from boomerang.store.tokens import ApiRole
from tests.api import make_token
from tests.gpu.conftest import GpuStackFactory
from tests.gpu.worktrees import git_worktree
from tests.helpers import wait_until
from tests.webhooks import SECRET

PY = sys.executable


async def test_post_then_get_a_gpu_run_tenant_scoped(
    dev_env: WorkflowEnvironment, gpu_stack: GpuStackFactory, store_pool: Pool, tmp_path: Path
) -> None:
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    snapshot = base64.b64encode(pack_snapshot(git_worktree(tmp_path / "repo")).data).decode()
    body = {"command": [PY, "-c", "print(open('tracked.txt').read(), end=''); raise SystemExit(7)"],
            "snapshot": snapshot, "task_id": "api-1"}  # fmt: skip
    async with gpu_stack(dev_env) as s:
        app = create_app(
            client=s.client, pool=store_pool, settings=Settings(state_dir=s.state_dir), webhook_secret=SECRET
        )
        approver = await make_token(store_pool, tenant, ApiRole.APPROVER)
        stranger = await make_token(store_pool, f"other-{tenant}", ApiRole.APPROVER)
        auth = {"Authorization": f"Bearer {approver}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://b.test"
        ) as http:
            started = await http.post("/gpu-runs", json=body, headers=auth)
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            bad_gpu = await http.post("/gpu-runs", json={**body, "gpu": "Z9"}, headers=auth)
            not_tar = await http.post("/gpu-runs", json={**body, "snapshot": "aGVsbG8="}, headers=auth)

            async def ended() -> dict[str, object] | None:
                got = await http.get(f"/gpu-runs/{run_id}", headers=auth)
                assert got.status_code == 200, got.text
                view: dict[str, object] = got.json()
                return None if view["status"] == "running" else view

            view = await wait_until(ended, what="the GPU run to end")
            other = await http.get(f"/gpu-runs/{run_id}", headers={"Authorization": f"Bearer {stranger}"})

    outcome = view["outcome"]
    assert isinstance(outcome, dict)
    assert (view["status"], outcome["exit_code"], outcome["stdout_tail"]) == ("completed", 7, "tracked\n")
    assert bad_gpu.status_code == 422 and "unknown GPU type 'Z9'" in bad_gpu.text
    assert not_tar.status_code == 422 and "not a .tar.gz" in not_tar.text
    assert other.status_code == 404


async def test_client_gpu_exec_sends_a_large_snapshot_through_the_store(
    dev_env: WorkflowEnvironment, gpu_stack: GpuStackFactory, tmp_path: Path
) -> None:
    repo = git_worktree(tmp_path / "repo")
    (repo / "weights.bin").write_bytes(os.urandom(400_000))  # over the 256 KiB inline limit
    async with gpu_stack(dev_env) as s:
        outcome = await s.client.gpu_exec(
            [PY, "-c", "import os; print(os.path.getsize('weights.bin'))"],
            workdir=repo, store=s.store, task_id="big", env_names=["HOME"],
        )  # fmt: skip
        try:
            await s.client.gpu_exec(["true"], workdir=repo, store=s.store, timeout_s=0)
        except GpuRunInputError as exc:
            refused = str(exc)
    assert (outcome.exit_code, outcome.stdout_tail) == (0, "400000\n")
    (snapshot_key,) = s.store.list("gpu-runs/snapshots/")
    assert snapshot_key.endswith(".tar.gz")
    assert "timeout_s: Input should be greater than or equal to 1" in refused
