"""`boomerang doctor` names what is wrong and how to fix it; `boomerang setup` fixes it.

Against the real dev server: a namespace registered here has none of Boomerang's
search attributes (the session's dev server registers them in `default` only), and
a fresh database has no migrations.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from boomerang.doctor import Outcome, run_checks
from boomerang.settings import Settings
from tests.fixtures.temporal import WEBHOOK_SECRET
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


async def _fresh_namespace(env: WorkflowEnvironment) -> str:
    name = f"doctor-{uuid.uuid4().hex[:8]}"
    await env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=Duration(seconds=86400))
    )

    async def known() -> bool | None:
        try:
            await env.client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=name))
        except Exception:
            return None
        return True

    await wait_until(known, what=f"namespace {name}")
    return name


async def _doctor(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "boomerang.cli", "doctor", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_doctor_names_the_failing_checks_and_setup_fixes_them(
    dev_env: WorkflowEnvironment, make_database: Callable[[], Awaitable[str]]
) -> None:
    namespace = await _fresh_namespace(dev_env)
    database = await make_database()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BOOMERANG_", "DATABASE_URL"))},
        "BOOMERANG_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "BOOMERANG_TEMPORAL_NAMESPACE": namespace,
        "DATABASE_URL": database,
        "BOOMERANG_WEBHOOK_SECRET": WEBHOOK_SECRET.get_secret_value(),
    }
    code, out = await _doctor(env)
    assert code == 1, out
    lines = out.splitlines()
    failing = [line.split()[1] for line in lines if line.startswith("FAIL")]
    assert failing == ["temporal.search_attributes", "postgres.migrations"], out
    assert "BoomerangStatus" in out and "fix: boomerang setup" in out
    assert "tcld namespace search-attributes add" in out  # the Temporal Cloud command
    assert database not in out  # the connection string is never printed

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "boomerang.cli", "setup", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out_setup = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
    assert proc.returncode == 0, out_setup
    assert f"search attributes added to {namespace}: BoomerangAwaiting" in out_setup
    assert "migrations applied: 0001_ledger" in out_setup

    code, out = await _doctor(env)
    assert code == 0, out
    assert out.splitlines()[-1] == "all checks passed"


async def test_a_bad_webhook_secret_price_table_and_modal_token_fail_by_name(
    dev_env: WorkflowEnvironment, pg_conninfo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_prices = tmp_path / "prices.json"
    bad_prices.write_text('{"version": 3}')
    settings = Settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        webhook_secret="not-a-whsec",
        price_table=bad_prices,
        compute_backend="modal",
    )
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "no-modal.toml"))
    results = {c.name: c for c in await run_checks(settings, conninfo=pg_conninfo)}
    assert results["temporal.search_attributes"].outcome is Outcome.OK
    assert results["postgres.migrations"].outcome is Outcome.OK
    assert results["postgres.roles"].outcome is Outcome.OK
    assert results["webhooks.secret"].outcome is Outcome.FAIL
    assert results["prices.table"].outcome is Outcome.FAIL
    assert "BOOMERANG_PRICE_TABLE" in results["prices.table"].fix
    assert results["compute.modal_token"].outcome is Outcome.FAIL
    assert "modal token new" in results["compute.modal_token"].fix
