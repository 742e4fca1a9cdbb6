"""The approval state machine on its own: no server, just the rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from boomerang.errors import CheckpointNotOpenYetError, InvalidDecisionError
from boomerang.models.decisions import CheckpointStatus, DecisionInput
from boomerang.models.pipeline import Decision, budget_checkpoint
from boomerang.money import usd_text
from boomerang.pipelines import startup_validation_pipeline
from workflows.approvals import ApprovalBook
from workflows.checkpoint_context import DEFAULT_WHY, budget_checkpoint_context, phase_checkpoint_context
from workflows.machine import PipelineMachine

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROSTER: dict[str, tuple[str, ...]] = {"founder": ("alice",), "finance": ("bob",)}


def _book(machine: PipelineMachine | None = None) -> ApprovalBook:
    spec = startup_validation_pipeline()
    return ApprovalBook(spec, ROSTER, rules=machine or PipelineMachine(spec))


def _d(checkpoint: str = "approve_founders_brief", **kw: object) -> DecisionInput:
    return DecisionInput.model_validate({"checkpoint": checkpoint, "approver": "alice", **kw})


def test_held_decision_lands_when_its_checkpoint_opens() -> None:
    book = _book()
    receipt = book.submit(_d(), now=NOW, via="signal:approve", hold_upcoming=True)
    assert receipt.status == "held" and book.decisions == []
    assert book.open("approve_founders_brief", now=NOW, deadline=NOW + timedelta(days=7)) is None
    assert book.settled("approve_founders_brief")
    record = book.decision_for("approve_founders_brief")
    assert record is not None and record.applied_at == NOW and record.via == "signal:approve"


def test_a_held_decision_that_became_invalid_is_refused_on_open() -> None:
    machine = PipelineMachine(startup_validation_pipeline())
    book = _book(machine)
    book.submit(_d(decision="iterate"), now=NOW, via="signal:decide", hold_upcoming=True)
    machine.iterations["onboarding"] = 3  # the bound was reached meanwhile
    refused = book.open("approve_founders_brief", now=NOW, deadline=NOW + timedelta(days=7))
    assert refused is not None and "the most allowed (3)" in refused.reason
    assert not book.settled("approve_founders_brief")


def test_only_one_decision_can_wait_for_a_checkpoint() -> None:
    book = _book()
    book.submit(_d(), now=NOW, via="signal:approve", hold_upcoming=True)
    with pytest.raises(InvalidDecisionError, match="already waiting for it to open"):
        book.submit(_d(decision="reject"), now=NOW, via="signal:reject", hold_upcoming=True)


def test_refused_submit_changes_nothing() -> None:
    book = _book()
    book.open("approve_founders_brief", now=NOW, deadline=NOW + timedelta(days=7))
    with pytest.raises(InvalidDecisionError, match="'mallory' may not decide"):
        book.submit(_d(approver="mallory", decision_id="x"), now=NOW, via="update", hold_upcoming=False)
    assert book.decisions == [] and not book.settled("approve_founders_brief")
    # The id of a refused decision is not burnt: the corrected one may reuse it.
    ok = book.submit(_d(decision_id="x"), now=NOW, via="update", hold_upcoming=False)
    assert ok.status == "applied"


def test_reopen_makes_checkpoints_upcoming_again_and_keeps_history() -> None:
    book = _book()
    book.open("approve_founders_brief", now=NOW, deadline=NOW + timedelta(days=7))
    book.submit(_d(decision="iterate"), now=NOW, via="update", hold_upcoming=False)
    book.reopen_from(0)
    assert [v.status for v in book.pending()] == []
    # Between openings nobody has seen the next one: a decision naming none is refused.
    with pytest.raises(InvalidDecisionError, match="opening 1 was decided and opening 2 opens after phase"):
        book.check(_d(), hold_upcoming=True)
    assert [d.decision for d in book.decisions] == [Decision.ITERATE]


def test_expired_checkpoint_refuses_late_decisions() -> None:
    book = _book()
    book.open("approve_founders_brief", now=NOW, deadline=NOW + timedelta(days=7))
    book.expire("approve_founders_brief")
    with pytest.raises(InvalidDecisionError, match="expired at 2026-01-08 00:00:00 UTC"):
        book.check(_d(), hold_upcoming=True)
    assert book._gates["approve_founders_brief"].status is CheckpointStatus.EXPIRED


def test_empty_roster_lets_any_named_person_decide() -> None:
    spec = startup_validation_pipeline()
    book = ApprovalBook(spec, {}, rules=PipelineMachine(spec))
    book.open("approve_founders_brief", now=NOW, deadline=NOW + timedelta(days=7))
    assert book.submit(_d(approver="anyone"), now=NOW, via="update", hold_upcoming=False).status == "applied"


def test_openings_count_and_a_decision_lands_only_on_the_one_it_names() -> None:
    book = _book()
    book.enter_phase(0)
    book.open("approve_founders_brief", now=NOW, deadline=NOW + timedelta(days=7))
    assert [v.opening for v in book.pending()] == [1]
    book.submit(_d(decision="iterate", opening=1), now=NOW, via="update", hold_upcoming=False)
    book.reopen_from(0)
    # Between openings: the next one may be waited for only by a decision that names it.
    assert book.opens_next(_d(opening=2)) and not book.opens_next(_d())
    with pytest.raises(InvalidDecisionError, match="opening 1 of approve_founders_brief, which has closed"):
        book.check(_d(opening=1), hold_upcoming=True)
    book.open("approve_founders_brief", now=NOW, deadline=NOW + timedelta(days=7))
    with pytest.raises(InvalidDecisionError, match="now at opening 2 \\(open\\)"):
        book.check(_d(opening=1), hold_upcoming=False)
    receipt = book.submit(_d(), now=NOW, via="update", hold_upcoming=False)
    assert (receipt.status, receipt.opening) == ("applied", 2)
    assert [(d.decision, d.opening) for d in book.decisions] == [(Decision.ITERATE, 1), (Decision.APPROVE, 2)]


def test_only_the_checkpoint_the_running_phase_opens_next_is_not_open_yet() -> None:
    book = _book()
    assert not book.opens_next(_d())  # no phase has started
    book.enter_phase(1)
    assert book.opens_next(_d("approve_customer_profile"))
    with pytest.raises(CheckpointNotOpenYetError, match="phase vpc_discovery is running and opens it next"):
        book.check(_d("approve_customer_profile"), hold_upcoming=False)
    with pytest.raises(InvalidDecisionError, match="opens later, in phase vpc_discovery"):
        book.check(_d("approve_vpc_completion"), hold_upcoming=False)
    assert not book.opens_next(_d("approve_vpc_completion"))  # behind another checkpoint
    assert not book.opens_next(_d("approve_founders_brief"))  # another phase's
    book.open("approve_customer_profile", now=NOW, deadline=NOW + timedelta(days=7))
    assert not book.opens_next(_d("approve_vpc_completion"))  # something is open: it decides first


def test_checkpoint_context_says_what_each_option_does_and_keeps_money_from_customers() -> None:
    spec = startup_validation_pipeline()
    gate = spec.phases[0].checkpoints[0]
    machine = PipelineMachine(spec, index=0)
    machine.iterations["onboarding"] = 3
    context = phase_checkpoint_context(machine, gate, {"summary": "a brief", "x": 1})
    assert context.summary == "a brief"
    assert (context.recommendation, context.why) == (Decision.APPROVE, DEFAULT_WHY)
    effects = {o.decision: o.effect for o in context.options}
    assert effects[Decision.APPROVE] == "accept and run Phase 1 · VPC Discovery"
    assert effects[Decision.ITERATE] == "not available: all 3 iterations of onboarding are used"
    # A function that reports nothing of its own still gets a summary from its fields.
    machine = PipelineMachine(spec, index=4, pivots=1)
    bare = phase_checkpoint_context(machine, spec.phases[4].checkpoints[1], {"b": 1, "a": 2})
    assert bare.summary == "output fields: a, b"
    assert {o.decision: o.effect for o in bare.options}[Decision.APPROVE] == (
        "accept and finish the run (completed)"
    )

    budget = budget_checkpoint_context(
        budget_checkpoint(), next_step="phase vpc_discovery", spent=Decimal("6.9E-7"),
        estimate=Decimal("0.0021048"), budget=Decimal("0E-8") + Decimal("0.001"),
    )  # fmt: skip
    assert budget.as_json()["spent_usd"] == "0.00000069"  # fixed point, never 6.9E-7
    assert "would bring spend to 0.00210549 USD, over the budget of 0.001 USD" in budget.summary
    assert not any(key.endswith("_usd") for key in budget.customer_safe())


@pytest.mark.parametrize(
    ("amount", "text"),
    [("6.9E-7", "0.00000069"), ("0E-8", "0"), ("1.5", "1.50"), ("12", "12"), ("1E+2", "100")],
)
def test_money_prints_in_fixed_point(amount: str, text: str) -> None:
    assert usd_text(Decimal(amount)) == text
