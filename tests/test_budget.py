"""A run with a budget stops before work that would cross it, until a person raises it."""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from boomerang.errors import InvalidDecisionError
from boomerang.models.decisions import DecisionInput, RunStatus
from boomerang.models.events import EventKind
from boomerang.models.pipeline import PipelineInput
from boomerang.store.queries import Pool, charter_for_run, ledger_for_run
from tests.fixtures.temporal import StartWorker
from tests.helpers import BRIEF, CHECKPOINTS, approve_through, wait_for_checkpoint

BUDGET = "approve_budget_increase"
ROSTER = {"founder": ("alice",), "finance": ("bob",), "advisor": ("carol",)}


def _input(budget: str, **kw: object) -> PipelineInput:
    return PipelineInput.model_validate(
        {"tenant": "acme", "project_id": "p", "brief": BRIEF, "roster": ROSTER, "budget_usd": budget, **kw}
    )


async def test_budget_checkpoint_shows_spend_and_estimate_and_approval_raises_it(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input("0.000001"))
        status = await wait_for_checkpoint(client, run_id, BUDGET)
        (gate,) = status.pending
        assert gate.phase == "onboarding"
        assert gate.context["next"] == "phase onboarding"
        assert gate.context["spent_usd"] == "0"
        # Phase 0 is 2 cores and 4 GiB for an expected 60 s.
        expected = Decimal(60) * 2 * Decimal("0.0000131") + Decimal(60) * 4 * Decimal("0.00000222")
        assert Decimal(str(gate.context["estimate_usd"])) == expected
        assert gate.context["budget_usd"] == "0.000001"

        with pytest.raises(InvalidDecisionError, match="'carol' may not decide approve_budget_increase"):
            await client.decide(run_id, DecisionInput(checkpoint=BUDGET, approver="carol"))
        with pytest.raises(InvalidDecisionError, match="budget_usd goes only with approve"):
            await client.decide(
                run_id,
                DecisionInput(checkpoint=BUDGET, approver="bob", decision="reject", budget_usd=Decimal(5)),
            )
        receipt = await client.decide(
            run_id, DecisionInput(checkpoint=BUDGET, approver="bob", budget_usd=Decimal(5))
        )
        assert receipt.status == "applied"
        # With $5 the whole pipeline fits: it never stops for money again.
        await approve_through(client, run_id, CHECKPOINTS)
        result = await client.result(run_id)

    assert result.status is RunStatus.COMPLETED
    assert [d.checkpoint for d in result.decisions] == [BUDGET, *CHECKPOINTS]
    assert result.decisions[0].budget_usd == Decimal(5)
    charter = await charter_for_run(store_pool, run_id, "acme")
    assert [(r.event, r.checkpoint) for r in charter[:3]] == [
        ("pipeline_started", None),
        ("budget_reached", None),
        ("checkpoint_opened", BUDGET),
    ]
    ledger = await ledger_for_run(store_pool, run_id)
    assert sum(e.kind == EventKind.BUDGET_REACHED for e in ledger.entries) == 1
    assert ledger.total_cost < Decimal(5)


async def test_rejecting_a_budget_increase_ends_the_run(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input("0.000001"))
        await wait_for_checkpoint(client, run_id, BUDGET)
        await client.decide(run_id, DecisionInput(checkpoint=BUDGET, approver="alice", decision="reject"))
        result = await client.result(run_id)
    assert result.status is RunStatus.REJECTED
    assert result.reason == "approve_budget_increase rejected by alice"
    assert result.outputs == {}


async def test_budget_gate_reopens_when_spend_reaches_it_again(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, pg_conninfo: str
) -> None:
    async with start_worker(dev_env) as client:
        # Phase 0 works a little while, so that it spends for certain: a phase that
        # finished inside a billing quantum would cost 0 and leave room for phase 1.
        run_id = await client.start_pipeline(_input("0.000001", context={"work_seconds": 0.05}))
        await wait_for_checkpoint(client, run_id, BUDGET)
        # Approving without an amount raises it to at least what the next step needs.
        await client.decide(run_id, DecisionInput(checkpoint=BUDGET, approver="alice"))
        await approve_through(client, run_id, CHECKPOINTS[:1])
        status = await wait_for_checkpoint(client, run_id, BUDGET)
        assert status.phase == "vpc_discovery"
        assert status.pending[0].context["next"] == "phase vpc_discovery"

    # What it has cost so far, as an operator reads it.
    env = {**os.environ, "DATABASE_URL": pg_conninfo}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "boomerang"), "cost", run_id, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[1].startswith("onboarding ") and lines[-1].startswith("total: $")
    assert "E-" not in out.decode() and "E+" not in out.decode()  # fixed point, every column
