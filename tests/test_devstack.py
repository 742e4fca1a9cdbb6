"""`boomerang dev` as a user runs it: start, run a pipeline, Ctrl-C, start again, resume."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from boomerang.client import BoomerangClient
from boomerang.devstack import search_attribute_flags
from boomerang.models.decisions import DecisionInput, RunStatus
from boomerang.models.pipeline import PipelineInput
from boomerang.settings import Settings
from tests.helpers import BRIEF, wait_for_checkpoint

BOOMERANG = str(Path(sys.executable).parent / "boomerang")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _dev(env: dict[str, str]) -> AsyncIterator[str]:
    """Run `boomerang dev --no-demo` until it says it is running; Ctrl-C it on exit."""
    proc = await asyncio.create_subprocess_exec(
        BOOMERANG, "dev", "--no-demo", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(90):
            while "Ctrl-C stops everything" not in "".join(seen):
                line = (await proc.stdout.readline()).decode()
                assert line, f"boomerang dev exited early:\n{''.join(seen)}"
                seen.append(line)
        yield "".join(seen)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            await proc.communicate()
    assert proc.returncode == 0, "".join(seen)


async def test_dev_stack_runs_a_pipeline_and_resumes_it_after_a_restart(tmp_path: Path) -> None:
    port, ui_port, api_port = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "BOOMERANG_STATE_DIR": str(tmp_path / "state"),
        "BOOMERANG_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "BOOMERANG_TEMPORAL_UI_PORT": str(ui_port),
        "BOOMERANG_API_PORT": str(api_port),
    }
    env.pop("DATABASE_URL", None)
    settings = Settings(temporal_address=f"127.0.0.1:{port}")

    async with _dev(env) as banner:
        assert f"http://localhost:{ui_port}/namespaces/default/workflows" in banner
        assert f"http://127.0.0.1:{api_port}/docs" in banner
        async with httpx.AsyncClient() as http:  # the HTTP API is up beside the worker
            health = await http.get(f"http://127.0.0.1:{api_port}/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        client = await BoomerangClient.connect(settings)
        run_id = await client.start_pipeline(PipelineInput(tenant="acme", project_id="p", brief=BRIEF))
        await wait_for_checkpoint(client, run_id, "approve_founders_brief", timeout_s=60)
        await client.decide(run_id, DecisionInput(checkpoint="approve_founders_brief", approver="alice"))
        await wait_for_checkpoint(client, run_id, "approve_customer_profile", timeout_s=60)

    assert (tmp_path / "state" / "temporal" / "temporal.db").exists()

    async with _dev(env):
        client = await BoomerangClient.connect(settings)
        status = await client.status(run_id)
        assert status.status is RunStatus.AWAITING_APPROVAL
        assert [cp.name for cp in status.pending] == ["approve_customer_profile"]
        assert [d.checkpoint for d in status.decisions] == ["approve_founders_brief"]
        pending = await client.pending_approvals(tenant="acme")
        assert [(p.run_id, p.checkpoint.name) for p in pending] == [(run_id, "approve_customer_profile")]


def test_search_attributes_are_registered_with_their_types() -> None:
    flags = search_attribute_flags()
    pairs = [flags[i + 1] for i in range(0, len(flags), 2)]
    assert pairs == [
        "BoomerangStatus=Keyword",
        "BoomerangPhase=Keyword",
        "BoomerangAwaiting=KeywordList",
        "BoomerangTenant=Keyword",
    ]
