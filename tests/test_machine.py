"""The pipeline state machine on its own: every route through a pipeline, no server."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from boomerang.errors import InvalidDecisionError
from boomerang.models.decisions import DecisionRecord, RunStatus
from boomerang.models.pipeline import Decision, ExpiryPolicy
from boomerang.pipelines import startup_validation_pipeline
from workflows.machine import (
    Finish,
    OpenCheckpoint,
    OverBudget,
    PipelineMachine,
    RunPhase,
    WithinBudget,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = startup_validation_pipeline()


def _record(decision: Decision, **kw: object) -> DecisionRecord:
    fields = {"decision_id": "d", "checkpoint": "c", "phase": "p", "approver": "alice", "received_at": NOW}
    return DecisionRecord.model_validate({**fields, "decision": decision, **kw})


def _approve_all(machine: PipelineMachine) -> list[str]:
    """Approve every checkpoint; the names of what ran and opened, in order."""
    seen: list[str] = []
    command = machine.start()
    while not isinstance(command, Finish):
        if isinstance(command, RunPhase):
            seen.append(command.phase.name)
            command = machine.phase_done()
        else:
            seen.append(command.checkpoint.name)
            command = machine.decided(command.checkpoint, _record(Decision.APPROVE))
    assert command == Finish(RunStatus.COMPLETED, "all phases approved")
    return seen


def test_approving_everything_runs_each_phase_then_its_checkpoints_in_order() -> None:
    expected = [name for p in SPEC.phases for name in (p.name, *(c.name for c in p.checkpoints))]
    assert _approve_all(PipelineMachine(SPEC)) == expected


def test_iterate_reruns_the_phase_with_the_feedback_and_counts() -> None:
    machine = PipelineMachine(SPEC)
    machine.start()
    gate = machine.phase_done()
    assert isinstance(gate, OpenCheckpoint)
    again = machine.decided(gate.checkpoint, _record(Decision.ITERATE, comment="name the payer"))
    assert again == RunPhase(0, SPEC.phases[0], iteration=1, feedback=("name the payer",), hypothesis=None)
    assert machine.iterations["onboarding"] == 1


def test_pivot_goes_back_with_the_new_hypothesis_and_keeps_it() -> None:
    machine = PipelineMachine(SPEC)
    machine.start()
    for _ in range(2):  # onboarding, then into vpc_discovery
        command = machine.phase_done()
        while isinstance(command, OpenCheckpoint):
            command = machine.decided(command.checkpoint, _record(Decision.APPROVE))
    assert machine.index == 2
    gate = machine.phase_done()
    assert isinstance(gate, OpenCheckpoint)
    back = machine.decided(
        gate.checkpoint, _record(Decision.PIVOT, comment="dental clinics", target_phase="1")
    )
    assert isinstance(back, RunPhase) and (back.index, back.hypothesis) == (1, "dental clinics")
    assert machine.pivots == 1
    forward = machine.phase_done()
    assert isinstance(forward, OpenCheckpoint) and forward.checkpoint.name == "approve_customer_profile"


def test_reject_and_expiry_end_the_run_unless_the_checkpoint_proceeds_on_expiry() -> None:
    machine = PipelineMachine(SPEC)
    machine.start()
    gate = machine.phase_done()
    assert isinstance(gate, OpenCheckpoint)
    assert machine.decided(gate.checkpoint, _record(Decision.REJECT)) == Finish(
        RunStatus.REJECTED, "approve_founders_brief rejected by alice"
    )
    assert machine.decided(gate.checkpoint, None) == Finish(
        RunStatus.EXPIRED, "approve_founders_brief expired with no decision"
    )
    lenient = gate.checkpoint.model_copy(update={"on_expiry": ExpiryPolicy.PROCEED})
    assert isinstance(machine.decided(lenient, None), RunPhase)  # phase 1 runs


def test_bounds_are_checked_before_a_decision_lands() -> None:
    base = SPEC.model_copy(update={"max_pivots": 1})
    machine = PipelineMachine(base)
    machine.iterations["onboarding"] = 3
    with pytest.raises(InvalidDecisionError, match="iterated 3 times, the most allowed \\(3\\)"):
        machine.check(0, Decision.ITERATE, None)
    machine.check(2, Decision.PIVOT, "vpc_discovery")  # allowed
    with pytest.raises(InvalidDecisionError, match="unknown target_phase 'marketing'"):
        machine.check(2, Decision.PIVOT, "marketing")
    with pytest.raises(
        InvalidDecisionError, match=r"this phase or an earlier one \(0\.\.2\), got 'viability'"
    ):
        machine.check(2, Decision.PIVOT, "viability")
    machine.pivots = 1
    with pytest.raises(InvalidDecisionError, match="pivoted 1 times, the most allowed \\(1\\)"):
        machine.check(2, Decision.PIVOT, None)
    machine.check(None, Decision.ITERATE, None)  # the budget gate has no bounds of its own


@pytest.mark.parametrize(("target", "expected"), [(None, 1), ("vpc_discovery", 1), (0, 0), ("2", 2)])
def test_pivot_target_resolution(target: str | int | None, expected: int) -> None:
    assert PipelineMachine(SPEC).pivot_target(2, target) == expected


def test_the_budget_gate_raises_the_budget_or_stops_the_run() -> None:
    machine = PipelineMachine(SPEC, budget=Decimal("1"))
    assert machine.before_paid_work(spent=Decimal("0.4"), estimate=Decimal("0.6")) == WithinBudget()
    over = machine.before_paid_work(spent=Decimal("0.5"), estimate=Decimal("0.6"))
    assert over == OverBudget(spent=Decimal("0.5"), estimate=Decimal("0.6"), budget=Decimal("1"))
    assert isinstance(over, OverBudget)
    gate = "approve_budget_increase"
    assert machine.budget_decided(over, _record(Decision.REJECT), gate) == Finish(
        RunStatus.REJECTED, "approve_budget_increase rejected by alice"
    )
    assert machine.budget_decided(over, None, gate).status is RunStatus.EXPIRED  # type: ignore[union-attr]
    assert machine.budget_decided(over, _record(Decision.APPROVE), gate) == WithinBudget()
    assert machine.budget == Decimal("2")  # at least double
    machine.budget_decided(over, _record(Decision.APPROVE, budget_usd=Decimal("7.5")), gate)
    assert machine.budget == Decimal("7.5")
    assert PipelineMachine(SPEC).before_paid_work(spent=Decimal(9), estimate=Decimal(9)) == WithinBudget()
