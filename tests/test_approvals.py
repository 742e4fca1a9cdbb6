"""The approval state machine on its own: no server, just the rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from boomerang.models.decisions import CheckpointStatus, DecisionInput
from boomerang.models.pipeline import Decision
from boomerang.pipelines import startup_validation_pipeline
from workflows.approvals import ApprovalBook, InvalidDecisionError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROSTER: dict[str, tuple[str, ...]] = {"founder": ("alice",), "finance": ("bob",)}


def _book() -> ApprovalBook:
    return ApprovalBook(startup_validation_pipeline(), ROSTER)


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
    book = _book()
    book.submit(_d(decision="iterate"), now=NOW, via="signal:decide", hold_upcoming=True)
    book.iterations["onboarding"] = 3  # the bound was reached meanwhile
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


@pytest.mark.parametrize(("target", "expected"), [(None, 1), ("vpc_discovery", 1), (0, 0), ("2", 2)])
def test_pivot_target_resolution(target: str | int | None, expected: int) -> None:
    assert _book().pivot_target(2, target) == expected


def test_empty_roster_lets_any_named_person_decide() -> None:
    book = ApprovalBook(startup_validation_pipeline(), {})
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


def test_only_the_checkpoint_the_running_phase_opens_next_is_waited_for() -> None:
    book = _book()
    assert not book.opens_next(_d())  # no phase has started
    book.enter_phase(1)
    assert book.opens_next(_d("approve_customer_profile"))
    assert not book.opens_next(_d("approve_vpc_completion"))  # behind another checkpoint
    assert not book.opens_next(_d("approve_founders_brief"))  # another phase's
    book.open("approve_customer_profile", now=NOW, deadline=NOW + timedelta(days=7))
    assert not book.opens_next(_d("approve_vpc_completion"))  # something is open: it decides first
