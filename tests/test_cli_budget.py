"""Budgets from the command line: `pipeline start --budget-usd`, `decide ... --budget-usd`."""

from __future__ import annotations

import uuid
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.store.queries import Pool
from tests.front_doors import front_doors
from tests.helpers import wait_for_checkpoint
from tests.test_cli import BOOMERANG, run

BUDGET = "approve_budget_increase"
BRIEF = "Clinics struggle with manual billing errors. We build automation that saves them time."


async def test_budget_from_the_cli_stops_the_run_and_decide_raises_it(
    dev_env: WorkflowEnvironment,
    backend: LocalBackend,
    event_store: EventSink,
    store_pool: Pool,
    pg_conninfo: str,
) -> None:
    tenant = f"cli-budget-{uuid.uuid4().hex[:8]}"
    async with front_doors(dev_env, backend, event_store, store_pool, pg_conninfo) as s:
        base = (
            str(BOOMERANG),
            "pipeline",
            "start",
            "--tenant",
            tenant,
            "--project-id",
            "clinic",
            "--brief",
            BRIEF,
        )
        zero = await run(*base, "--budget-usd", "0", env=s.env)
        words = await run(*base, "--budget-usd", "ten", env=s.env)
        started = await run(*base, "--budget-usd", "0.000001", env=s.env)
        assert started.code == 0, started.output
        run_id = started.out.strip()
        status = await wait_for_checkpoint(s.client, run_id, BUDGET)

        def decide(*args: str) -> tuple[str, ...]:
            return (str(BOOMERANG), "decide", run_id, BUDGET, *args, "--by", "bob")

        not_positive = await run(*decide("approve", "--budget-usd", "-5"), env=s.env)
        with_reject = await run(*decide("reject", "--budget-usd", "5"), env=s.env)
        raised = await run(*decide("approve", "--budget-usd", "5.25"), env=s.env)
        after = await s.client.status(run_id)

    assert zero.code == 2 and "budget_usd: Input should be greater than 0" in zero.err
    assert words.code == 2 and "budget_usd: Input should be a valid decimal" in words.err
    (gate,) = status.pending
    assert gate.context["budget_usd"] == "0.000001"
    # The same checks as the update: a bad amount never reaches the run; the run refuses the rest.
    assert not_positive.code == 2 and "budget_usd: Input should be greater than 0" in not_positive.err
    assert with_reject.code == 2
    assert f"refused: budget_usd goes only with approve at {BUDGET}" in with_reject.err
    assert raised.code == 0, raised.output
    assert raised.out.startswith(f"applied: approve on {BUDGET} (opening 1)")
    (decision,) = after.decisions
    assert (decision.checkpoint, decision.approver, decision.budget_usd) == (BUDGET, "bob", Decimal("5.25"))
