"""The pipeline's paths end to end on the dev server: approve, reject, iterate, pivot, override."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from boomerang.constants import SA_AWAITING, SA_PHASE, SA_STATUS, SA_TENANT
from boomerang.models.decisions import RunStatus
from boomerang.models.events import EventKind
from boomerang.models.pipeline import Decision, PipelineInput
from boomerang.models.tasks import DispatchInput
from boomerang.store.queries import Pool, charter_for_run, ledger_for_run
from tests.fixtures.temporal import StartWorker
from tests.helpers import BRIEF, CHECKPOINTS, approve_through, decide, wait_for_checkpoint


def _input(**kw: object) -> PipelineInput:
    return PipelineInput.model_validate({"tenant": "acme", "project_id": "clinic", "brief": BRIEF, **kw})


async def test_happy_path_runs_five_phases_and_ten_checkpoints(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: object
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        await approve_through(client, run_id, CHECKPOINTS)
        result = await client.result(run_id)
        status = await client.status(run_id)
        history = await client.temporal.get_workflow_handle(run_id).fetch_history()

    assert result.status is RunStatus.COMPLETED
    assert list(result.outputs) == [
        "onboarding",
        "vpc_discovery",
        "desirability",
        "feasibility",
        "viability",
    ]
    assert [d.checkpoint for d in result.decisions] == list(CHECKPOINTS)
    assert all(d.approver == "alice" and d.decision is Decision.APPROVE for d in result.decisions)
    assert status.status is RunStatus.COMPLETED and status.pending == ()
    # Phases did real work on the brief.
    vpc = result.outputs["vpc_discovery"]
    assert isinstance(vpc, dict) and isinstance(vpc["specialists"], dict)
    research = vpc["specialists"]["research"]  # Scout_Ang ran inside the run, in phase 1
    assert isinstance(research, dict) and research["findings"]
    feasibility = result.outputs["feasibility"]
    assert isinstance(feasibility, dict)
    assert feasibility["components"] == ["api"]

    ledger = await ledger_for_run(store_pool, run_id)  # type: ignore[arg-type]
    attempts = [row for row in ledger.entries if row.kind == EventKind.COMPUTE_ATTEMPT]
    kinds = [EventKind(row.kind) for row in ledger.entries if row.kind != EventKind.COMPUTE_ATTEMPT]
    # Each phase ran once, and each run was costed (instant phases cost fractions of
    # a cent, so some round to zero); the run's total is their sum.
    assert sorted((row.phase or "", row.task_type or "") for row in attempts) == sorted(
        [(phase, "") for phase in result.outputs] + [("vpc_discovery", "research")]
    )
    assert all(row.total_cost is not None for row in attempts)
    assert ledger.total_cost == sum(row.total_cost or 0 for row in attempts)
    assert kinds.count(EventKind.PHASE_COMPLETED) == 5
    assert kinds.count(EventKind.CHECKPOINT_OPENED) == 10
    assert kinds.count(EventKind.CHECKPOINT_DECIDED) == 10
    assert kinds[0] == EventKind.PIPELINE_STARTED and kinds[-1] == EventKind.PIPELINE_COMPLETED
    # Its events are the run's, inside its phase; no child workflow ran it.
    research_steps = [
        (EventKind(row.kind), row.task_type) for row in ledger.entries
        if row.phase == "vpc_discovery" and row.kind != EventKind.COMPUTE_ATTEMPT
    ]  # fmt: skip
    assert research_steps[:4] == [
        (EventKind.PHASE_STARTED, None), (EventKind.TASK_STARTED, "research"),
        (EventKind.TASK_COMPLETED, "research"), (EventKind.PHASE_COMPLETED, None),
    ]  # fmt: skip
    started_child = EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    assert not any(e.event_type == started_child for e in history.events)
    # The steps queued when a phase is dispatched go with the dispatch, which writes them
    # before any attempt row of its call: each phase's attempt comes after its start.
    first = next(e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    payloads = first.activity_task_scheduled_event_attributes.input.payloads
    (dispatched,) = pydantic_data_converter.payload_converter.from_payloads(payloads, [DispatchInput])
    assert [e.kind for e in dispatched.events] == [EventKind.PIPELINE_STARTED, EventKind.PHASE_STARTED]
    seqs = {(row.kind, row.phase, row.task_type): row.seq for row in ledger.entries}
    for row in attempts:
        started = EventKind.PHASE_STARTED if row.task_type is None else EventKind.TASK_STARTED
        task_type = row.task_type if row.task_type else None
        assert seqs[(started, row.phase, task_type)] < row.seq, row


async def test_reject_stops_the_run(dev_env: WorkflowEnvironment, start_worker: StartWorker) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        await approve_through(client, run_id, CHECKPOINTS[:1])
        await decide(client, run_id, "approve_customer_profile", Decision.REJECT, comment="wrong segment")
        result = await client.result(run_id)

    assert result.status is RunStatus.REJECTED
    assert "approve_customer_profile rejected by alice" in result.reason
    assert list(result.outputs) == ["onboarding", "vpc_discovery"]


async def test_iterate_reruns_the_phase_with_feedback(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        await decide(client, run_id, "approve_founders_brief", Decision.ITERATE, comment="name the payer")
        status = await decide(client, run_id, "approve_founders_brief")
        await approve_through(client, run_id, CHECKPOINTS[1:])
        result = await client.result(run_id)

    assert status.status == "applied"
    onboarding = result.outputs["onboarding"]
    assert isinstance(onboarding, dict)
    assert onboarding["iteration"] == 1
    assert onboarding["addressed_feedback"] == ["name the payer"]
    assert [d.decision for d in result.decisions[:2]] == [Decision.ITERATE, Decision.APPROVE]
    assert result.status is RunStatus.COMPLETED


async def test_pivot_loops_back_to_an_earlier_phase(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        await approve_through(client, run_id, CHECKPOINTS[:6])
        await decide(
            client, run_id, "approve_desirability_gate", Decision.PIVOT,
            target_phase="vpc_discovery", comment="Dental clinics, not GPs",
        )  # fmt: skip
        # The pivot reopens phase 1's checkpoints, then everything after them.
        await approve_through(client, run_id, CHECKPOINTS[1:])
        result = await client.result(run_id)
        status = await client.status(run_id)

    assert result.status is RunStatus.COMPLETED
    assert status.pivots == 1
    vpc = result.outputs["vpc_discovery"]
    assert isinstance(vpc, dict) and vpc["hypothesis"] == "Dental clinics, not GPs"
    decided = [d.checkpoint for d in result.decisions]
    assert decided.count("approve_customer_profile") == 2
    assert decided.count("approve_founders_brief") == 1


async def test_override_proceed_passes_a_gate(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        await approve_through(client, run_id, CHECKPOINTS[:7])
        await decide(
            client,
            run_id,
            "approve_feasibility_gate",
            Decision.OVERRIDE_PROCEED,
            comment="CTO signs off",
        )
        await approve_through(client, run_id, CHECKPOINTS[8:])
        result = await client.result(run_id)

    assert result.status is RunStatus.COMPLETED
    gate = next(d for d in result.decisions if d.checkpoint == "approve_feasibility_gate")
    assert gate.decision is Decision.OVERRIDE_PROCEED and gate.comment == "CTO signs off"


async def test_a_phase_that_cannot_succeed_fails_the_run_with_a_reason(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    # Inputs the desirability phase refuses: a permanent error, so no retries either.
    bad = {"baseline_conversion": 0.5, "target_conversion": 0.1}
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input(context=bad))
        await approve_through(client, run_id, CHECKPOINTS[:3])
        with pytest.raises(WorkflowFailureError) as failed:
            await client.result(run_id)
        status = await client.status(run_id)

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "PhaseFailed"
    assert "need 0 < baseline_conversion < target_conversion < 1" in cause.message
    assert status.status is RunStatus.FAILED
    charter = await charter_for_run(store_pool, run_id, "acme")
    assert [r.event for r in charter][-2:] == ["phase_failed", "pipeline_failed"]
    assert charter[-2].message == "Phase 2 · Desirability could not be completed"
    ledger = await ledger_for_run(store_pool, run_id)
    failed_attempts = [
        e for e in ledger.entries if e.kind == EventKind.COMPUTE_ATTEMPT and e.status == "failed"
    ]
    assert [e.attempt for e in failed_attempts] == [1]


async def test_search_attributes_follow_the_run_and_change_only_when_it_moves(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(_input())
        handle = client.temporal.get_workflow_handle(run_id)
        await wait_for_checkpoint(client, run_id, CHECKPOINTS[0])
        waiting = (await handle.describe()).typed_search_attributes
        # Approving the last checkpoint of phase 0 moves the run to phase 1's first checkpoint.
        await approve_through(client, run_id, CHECKPOINTS[:1])
        await wait_for_checkpoint(client, run_id, CHECKPOINTS[1])
        next_one = (await handle.describe()).typed_search_attributes
        await approve_through(client, run_id, CHECKPOINTS[1:])
        await client.result(run_id)
        done = (await handle.describe()).typed_search_attributes
        history = await handle.fetch_history()

    shown = [waiting.get(key) for key in (SA_STATUS, SA_PHASE, SA_AWAITING, SA_TENANT)]
    assert shown == ["awaiting_approval", "onboarding", [CHECKPOINTS[0]], "acme"]
    assert (next_one.get(SA_STATUS), next_one.get(SA_PHASE), next_one.get(SA_AWAITING)) == (
        "awaiting_approval", "vpc_discovery", [CHECKPOINTS[1]],
    )  # fmt: skip
    assert (done.get(SA_STATUS), done.get(SA_AWAITING)) == ("completed", None)
    upserts = [
        e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    ours = [fields for fields in upserts if "TemporalChangeVersion" not in fields]
    # One upsert per phase start, one per checkpoint opening, one at the end: a decision's
    # `running` is folded into whatever the run does next in the same workflow task.
    assert len(ours) == 5 + len(CHECKPOINTS) + 1
    # The tenant never changes: it is sent once.
    assert sum("BoomerangTenant" in fields for fields in ours) == 1
