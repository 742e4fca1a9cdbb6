"""Every way a decision can be wrong gets its own message, and changes nothing."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from boomerang.client import BoomerangClient
from boomerang.errors import InvalidDecisionError, UnknownRunError
from boomerang.models.decisions import DecisionInput, RunStatus
from boomerang.models.pipeline import Decision, PipelineInput
from boomerang.pipelines import startup_validation_pipeline
from tests.fixtures.temporal import StartWorker
from tests.helpers import BRIEF, CHECKPOINTS, approve_through, decide, wait_for_checkpoint

ROSTER = {"founder": ("alice",), "advisor": ("carol",), "finance": ("bob",)}


def _input(**kw: object) -> PipelineInput:
    return PipelineInput.model_validate(
        {"tenant": "acme", "project_id": "p1", "brief": BRIEF, "roster": ROSTER, **kw}
    )


async def _refused(client: BoomerangClient, run_id: str, **kw: object) -> str:
    before = await client.status(run_id)
    with pytest.raises(InvalidDecisionError) as caught:
        await client.decide(run_id, DecisionInput.model_validate({"approver": "alice", **kw}))
    after = await client.status(run_id)
    assert after.decisions == before.decisions, "a refused decision must not land"
    # Kept as a refused input, with the reason the client heard, attributed to the client.
    new = [(r.via, r.reason) for r in after.refused[len(before.refused) :]]
    assert new == [("client", str(caught.value))]
    return str(caught.value)


async def test_bad_updates_are_rejected_with_a_reason(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        await wait_for_checkpoint(client, run_id, "approve_founders_brief")

        assert "unknown checkpoint 'approve_everything'" in await _refused(
            client, run_id, checkpoint="approve_everything"
        )
        assert "approve_vpc_completion is not pending: it opens later" in await _refused(
            client, run_id, checkpoint="approve_vpc_completion"
        )
        assert "'mallory' may not decide approve_founders_brief; allowed roles: founder" in await _refused(
            client, run_id, checkpoint="approve_founders_brief", approver="mallory"
        )
        assert "'pivot' is not an option at approve_founders_brief" in await _refused(
            client, run_id, checkpoint="approve_founders_brief", decision="pivot"
        )

        await decide(client, run_id, "approve_founders_brief")
        assert "not pending: already decided (approve by alice)" in await _refused(
            client, run_id, checkpoint="approve_founders_brief"
        )
        with pytest.raises(UnknownRunError):
            await client.decide(
                "no-such-run", DecisionInput(checkpoint="approve_founders_brief", approver="a")
            )


async def test_roles_decide_their_own_checkpoints(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        await approve_through(client, run_id, CHECKPOINTS[:5])
        await wait_for_checkpoint(client, run_id, "approve_spend_increase")
        assert "allowed roles: founder, finance" in await _refused(
            client, run_id, checkpoint="approve_spend_increase", approver="carol"
        )
        receipt = await client.decide(
            run_id, DecisionInput(checkpoint="approve_spend_increase", approver="bob")
        )
    assert receipt.status == "applied"


async def test_iterate_and_pivot_are_bounded(dev_env: WorkflowEnvironment, start_worker: StartWorker) -> None:
    base = startup_validation_pipeline()
    phases = list(base.phases)
    phases[0] = phases[0].model_copy(update={"max_iterations": 1})
    spec = base.model_copy(update={"phases": tuple(phases), "max_pivots": 0})
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input(spec=spec))
        await decide(client, run_id, "approve_founders_brief", Decision.ITERATE, comment="again")
        await wait_for_checkpoint(client, run_id, "approve_founders_brief")
        # The status shows the first iterate before the next one is refused.
        assert (await client.status(run_id)).iterations["onboarding"] == 1
        message = await _refused(client, run_id, checkpoint="approve_founders_brief", decision="iterate")
        assert "iterated 1 times, the most allowed (1)" in message

        await approve_through(client, run_id, CHECKPOINTS[:6])
        message = await _refused(client, run_id, checkpoint="approve_desirability_gate", decision="pivot")
        assert "pivoted 0 times, the most allowed (0)" in message


async def test_pivot_target_must_be_an_earlier_phase(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        await approve_through(client, run_id, CHECKPOINTS[:6])
        await wait_for_checkpoint(client, run_id, "approve_desirability_gate")
        assert "target_phase must be this phase or an earlier one (0..2), got 'viability'" in await _refused(
            client,
            run_id,
            checkpoint="approve_desirability_gate",
            decision="pivot",
            target_phase="viability",
        )
        assert "unknown target_phase 'marketing'" in await _refused(
            client,
            run_id,
            checkpoint="approve_desirability_gate",
            decision="pivot",
            target_phase="marketing",
        )


async def test_same_decision_id_twice_is_a_no_op(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        first = await decide(client, run_id, "approve_founders_brief", decision_id="d-1")
        again = await client.decide(
            run_id,
            DecisionInput(checkpoint="approve_founders_brief", approver="alice", decision_id="d-1"),
        )
        # The same id by signal is a no-op as well, not a refusal.
        handle = client.temporal.get_workflow_handle(run_id)
        await handle.signal(
            "approve",
            {"checkpoint": "approve_founders_brief", "approver": "alice", "decision_id": "d-1"},
        )
        status = await wait_for_checkpoint(client, run_id, "approve_customer_profile")

    assert first.status == "applied" and again.status == "duplicate"
    assert again.decision_id == first.decision_id == "d-1"
    assert [d.decision_id for d in status.decisions] == ["d-1"]
    assert status.refused == ()


async def test_client_decisions_go_by_signal_and_two_racing_sendings_land_once(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        await wait_for_checkpoint(client, run_id, "approve_founders_brief")
        same = DecisionInput(checkpoint="approve_founders_brief", approver="alice", decision_id="d-race")
        receipts = await asyncio.gather(client.decide(run_id, same), client.decide(run_id, same))
        status = await wait_for_checkpoint(client, run_id, "approve_customer_profile")
        history = await client.temporal.get_workflow_handle(run_id).fetch_history()

    assert sorted(r.status.value for r in receipts) == ["applied", "duplicate"]
    assert {r.opening for r in receipts} == {1}
    [landed] = status.decisions
    assert (landed.decision_id, landed.via, landed.opening) == ("d-race", "client", 1)
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signals and set(signals) == {"decide"}
    # No update ever entered the history: the client sends by signal and reads by query.
    updates = {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    }
    assert not [e.event_type for e in history.events if e.event_type in updates]
    assert status.refused == ()


async def test_signals_decide_hold_and_refuse(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        handle = client.temporal.get_workflow_handle(run_id)
        # Arrives before its checkpoint opens: held, then applied when it opens.
        await handle.signal("approve", {"checkpoint": "approve_customer_profile", "approver": "alice"})
        # Malformed inputs are kept as refused; the run is not wedged.
        await handle.signal("approve", "yes please")
        await handle.signal("approve", {"checkpoint": "approve_founders_brief"})
        await handle.signal("approve", {"checkpoint": "approve_founders_brief", "approver": "mallory"})
        await handle.signal("decide", {"checkpoint": "approve_founders_brief", "approver": "alice"})
        await handle.signal(
            "reject",
            {"checkpoint": "approve_founders_brief", "approver": "alice", "decision": "approve"},
        )
        await handle.signal("approve", {"checkpoint": "approve_founders_brief", "approver": "alice"})
        status = await wait_for_checkpoint(client, run_id, "approve_vpc_completion")
        await handle.signal(
            "reject", {"checkpoint": "approve_vpc_completion", "approver": "alice", "comment": "no"}
        )
        result = await client.result(run_id)

    reasons = [r.reason for r in status.refused]
    assert reasons == [
        "the approve signal takes one JSON object, e.g. "
        '{"checkpoint": "approve_founders_brief", "approver": "alice"}',
        "invalid approve signal: approver: Field required",
        "'mallory' may not decide approve_founders_brief; allowed roles: founder",
        'the decide signal needs a "decision" (approve, reject, iterate, ...)',
        "the reject signal cannot carry decision 'approve'; use the decide signal",
    ]
    assert [(d.checkpoint, d.via) for d in status.decisions] == [
        ("approve_founders_brief", "signal:approve"),
        ("approve_customer_profile", "signal:approve"),
    ]
    assert result.status is RunStatus.REJECTED
    assert result.decisions[-1].decision is Decision.REJECT
