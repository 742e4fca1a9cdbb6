"""The checkpoints of one run and the decisions on them: a pure state machine.

Every front door (update, signals, client, HTTP) ends in `ApprovalBook.submit`, so a
decision is checked and lands the same way whichever way it came. No Temporal
imports: the workflow supplies the clock, and turns `InvalidDecisionError` into the
error its caller sees.

Openings: a checkpoint opens once per pass of its phase (1, then 2 after an iterate
or a pivot re-runs the phase, ...). A decision may name the opening it was made on;
it lands on that opening only. One that names none lands on the opening that is
open when it arrives; sent before the checkpoint has ever opened (a signal only) it
is held for the first opening; sent while the checkpoint waits to re-open it is
refused, because nobody has seen the next opening yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import JsonValue

from boomerang.errors import CheckpointNotOpenYetError, InvalidDecisionError
from boomerang.models.decisions import (
    CheckpointStatus,
    CheckpointView,
    DecisionInput,
    DecisionReceipt,
    DecisionRecord,
    ReceiptStatus,
    RefusedInput,
)
from boomerang.models.pipeline import BUDGET_CHECKPOINT, CheckpointSpec, Decision, PipelineSpec


class DecisionRules(Protocol):
    """The rules of the run's progression a decision must meet (iterate and pivot bounds):
    `workflows.machine.PipelineMachine`."""

    def check(self, phase_index: int | None, decision: Decision, target_phase: str | int | None) -> None: ...


# Checkpoints that belong to no phase (the budget gate) open in whichever phase needs them.
ANY_PHASE = -1


@dataclass
class _Gate:
    spec: CheckpointSpec
    phase_index: int
    phase: str
    status: CheckpointStatus = CheckpointStatus.UPCOMING
    opened_at: datetime | None = None
    deadline: datetime | None = None
    reminded_at: datetime | None = None
    decision: DecisionRecord | None = None
    context: dict[str, JsonValue] = field(default_factory=dict)
    # How many times this checkpoint has opened; the open one (if any) is this number.
    openings: int = 0

    def view(self, deciders: tuple[str, ...] = ()) -> CheckpointView:
        return CheckpointView(
            deciders=deciders,
            name=self.spec.name,
            title=self.spec.title,
            phase=self.phase,
            status=self.status,
            options=self.spec.options,
            approvers=self.spec.approvers,
            opening=self.openings,
            recommendation=self.spec.recommendation,
            opened_at=self.opened_at,
            deadline=self.deadline,
            reminded_at=self.reminded_at,
            context=dict(self.context),
        )


class ApprovalBook:
    def __init__(
        self,
        spec: PipelineSpec,
        roster: dict[str, tuple[str, ...]],
        *,
        floating: Sequence[CheckpointSpec] = (),
        rules: DecisionRules,
    ) -> None:
        self._spec = spec
        self._roster = roster
        self._gates = {
            cp.name: _Gate(cp, i, phase.name)
            for i, phase in enumerate(spec.phases)
            for cp in phase.checkpoints
        }
        self._gates.update({cp.name: _Gate(cp, ANY_PHASE, "") for cp in floating})
        self._held: dict[str, DecisionRecord] = {}
        self._receipts: dict[str, DecisionReceipt] = {}
        # decision_id -> the sending that landed it (only for sendings that name themselves).
        self._landed_by: dict[str, str] = {}
        self._auto_ids = 0
        self.decisions: list[DecisionRecord] = []
        self.refused: list[RefusedInput] = []
        self._rules = rules
        self._phase_index: int | None = None
        # Set when the run was cancelled: every checkpoint is closed for good.
        self.cancelled = False

    # -- checking ----------------------------------------------------------------

    def check(self, d: DecisionInput, *, hold_upcoming: bool) -> DecisionReceipt | None:
        """Raise `InvalidDecisionError` if `d` cannot land; a known id returns its receipt."""
        if d.decision_id is not None and d.decision_id in self._receipts:
            return self._receipts[d.decision_id].model_copy(update={"status": ReceiptStatus.DUPLICATE})
        if self.cancelled:
            raise InvalidDecisionError(f"the run was cancelled; {d.checkpoint} takes no more decisions")
        gate = self._gates.get(d.checkpoint)
        if gate is None:
            known = ", ".join(self._gates)
            raise InvalidDecisionError(f"unknown checkpoint {d.checkpoint!r}; this run has: {known}")
        self._check_state(gate, d, hold_upcoming=hold_upcoming)
        self._check_approver(gate, d.approver)
        if d.decision not in gate.spec.options:
            offered = ", ".join(gate.spec.options)
            raise InvalidDecisionError(
                f"{d.decision.value!r} is not an option at {gate.spec.name}; offered: {offered}"
            )
        if d.budget_usd is not None and (
            gate.spec.name != BUDGET_CHECKPOINT or d.decision is not Decision.APPROVE
        ):
            raise InvalidDecisionError(f"budget_usd goes only with approve at {BUDGET_CHECKPOINT}")
        if gate.status is CheckpointStatus.OPEN:
            self._check_bounds(gate, d)
        return None

    def _check_state(self, gate: _Gate, d: DecisionInput, *, hold_upcoming: bool) -> None:
        name, current, opening = gate.spec.name, gate.openings, d.opening
        if gate.status is CheckpointStatus.UPCOMING:
            if not hold_upcoming and self.opens_next(d):
                # Sent a moment early, or with the phase result that opens it still behind
                # it in the same workflow task (a worker restart delivers both at once):
                # the client sends it again shortly (an accepted update that waited would
                # write a history its own replay cannot reproduce).
                raise CheckpointNotOpenYetError(
                    f"checkpoint {name} is not open yet: phase {gate.phase} is running and opens it "
                    "next; send the decision again once it opens"
                )
            self._check_upcoming(gate, opening, hold_upcoming=hold_upcoming)
            return
        if opening is not None and opening < current:
            raise InvalidDecisionError(
                f"this decision is for opening {opening} of {name}, which has closed; {name} is now "
                f"at opening {current} ({gate.status.value}): look at it and decide with opening {current}"
            )
        if opening is not None and opening > current:
            raise InvalidDecisionError(
                f"opening {opening} of {name} has not opened yet; the latest is opening {current}"
            )
        if gate.status is CheckpointStatus.EXPIRED:
            raise InvalidDecisionError(f"checkpoint {name} expired at {gate.deadline:%Y-%m-%d %H:%M:%S} UTC")
        if gate.status is CheckpointStatus.DECIDED:
            assert gate.decision is not None
            prior = gate.decision
            by = f"{prior.decision.value} by {prior.approver}"
            raise InvalidDecisionError(f"checkpoint {name} is not pending: already decided ({by})")

    def _check_upcoming(self, gate: _Gate, opening: int | None, *, hold_upcoming: bool) -> None:
        name, closed = gate.spec.name, gate.openings
        if opening is not None and opening <= closed:
            raise InvalidDecisionError(
                f"this decision is for opening {opening} of {name}, which has closed; "
                f"opening {closed + 1} {self._opens_again(gate)}: look at it then and decide again"
            )
        if opening is not None and opening > closed + 1:
            raise InvalidDecisionError(
                f"opening {opening} of {name} has not opened yet; the latest is opening {closed}"
            )
        if closed > 0:
            raise InvalidDecisionError(
                f"checkpoint {name} is not pending: opening {closed} was decided and opening "
                f"{closed + 1} {self._opens_again(gate)}; decide it when it opens"
            )
        if not hold_upcoming:
            where = f", in phase {gate.phase}" if gate.phase else ""
            raise InvalidDecisionError(f"checkpoint {name} is not pending: it opens later{where}")
        if name in self._held:
            raise InvalidDecisionError(f"a decision for {name} is already waiting for it to open")

    @staticmethod
    def _opens_again(gate: _Gate) -> str:
        if gate.phase_index == ANY_PHASE:
            return "opens when the run next reaches its budget"
        return f"opens after phase {gate.phase} runs again"

    def _check_approver(self, gate: _Gate, approver: str) -> None:
        roles = gate.spec.approvers
        if not roles or not self._roster:
            return
        if any(approver in self._roster.get(role, ()) for role in roles):
            return
        raise InvalidDecisionError(
            f"{approver!r} may not decide {gate.spec.name}; allowed roles: {', '.join(roles)}"
        )

    def _check_bounds(self, gate: _Gate, d: DecisionInput) -> None:
        index = None if gate.phase_index == ANY_PHASE else gate.phase_index
        self._rules.check(index, d.decision, d.target_phase)

    def opens_next(self, d: DecisionInput) -> bool:
        """`d` is for the opening this run opens next, with nobody's input: its checkpoint is
        the first undecided one of the running phase, nothing is open, and `d` names that
        opening, or names none and it is the checkpoint's first. The budget gate never is:
        whether it opens depends on spend not known yet. Such an update is refused as
        `CheckpointNotOpenYetError`, which the client sends again for a while."""
        gate = self._gates.get(d.checkpoint)
        if gate is None or gate.status is not CheckpointStatus.UPCOMING:
            return False
        if gate.phase_index == ANY_PHASE or gate.phase_index != self._phase_index:
            return False
        if any(g.status is CheckpointStatus.OPEN for g in self._gates.values()):
            return False
        wanted = gate.openings + 1
        if d.opening != wanted and not (d.opening is None and wanted == 1):
            return False
        phase = self._spec.phases[gate.phase_index]
        first_upcoming = next(
            cp.name for cp in phase.checkpoints if self._gates[cp.name].status is CheckpointStatus.UPCOMING
        )
        return first_upcoming == gate.spec.name

    # -- landing -----------------------------------------------------------------

    def submit(
        self, d: DecisionInput, *, now: datetime, via: str, hold_upcoming: bool, delivery: str | None = None
    ) -> DecisionReceipt:
        """Check and land a decision; raises `InvalidDecisionError`, changes nothing then.

        `delivery` names one sending of it (the client's signal carries one), so that of
        two sendings of one decision_id that raced, one hears `applied` and the other
        `duplicate`, as with the update."""
        duplicate = self.check(d, hold_upcoming=hold_upcoming)
        if duplicate is not None:
            return duplicate
        if delivery is not None and d.decision_id is not None:
            self._landed_by[d.decision_id] = delivery
        gate = self._gates[d.checkpoint]
        opening = gate.openings if gate.status is CheckpointStatus.OPEN else gate.openings + 1
        if d.decision_id is None:
            self._auto_ids += 1
        record = DecisionRecord(
            decision_id=d.decision_id or f"{d.checkpoint}-{self._auto_ids}",
            checkpoint=d.checkpoint,
            phase=gate.phase,
            decision=d.decision,
            approver=d.approver,
            comment=d.comment,
            target_phase=None if d.target_phase is None else str(d.target_phase),
            budget_usd=d.budget_usd,
            received_at=now,
            via=via,
            opening=opening,
        )
        if gate.status is CheckpointStatus.OPEN:
            self._apply(gate, record, now)
            status = ReceiptStatus.APPLIED
        else:
            self._held[gate.spec.name] = record
            status = ReceiptStatus.HELD
        receipt = DecisionReceipt(
            decision_id=record.decision_id,
            checkpoint=d.checkpoint,
            decision=d.decision,
            status=status,
            opening=opening,
        )
        self._receipts[record.decision_id] = receipt
        return receipt

    def _apply(self, gate: _Gate, record: DecisionRecord, now: datetime) -> None:
        record = record.model_copy(update={"applied_at": now})
        gate.decision = record
        gate.status = CheckpointStatus.DECIDED
        self.decisions.append(record)

    def refuse(
        self, *, now: datetime, via: str, reason: str, payload: JsonValue, delivery: str | None = None
    ) -> RefusedInput:
        refused = RefusedInput(received_at=now, via=via, reason=reason, payload=payload, delivery=delivery)
        self.refused.append(refused)
        return refused

    # -- the workflow's side -----------------------------------------------------

    def enter_phase(self, index: int) -> None:
        """The run is now running phase `index`: its checkpoints, and those of every later
        phase, open (again) from here."""
        self._phase_index = index
        self.reopen_from(index)

    def open(
        self,
        name: str,
        *,
        now: datetime,
        deadline: datetime,
        phase: str | None = None,
        context: dict[str, JsonValue] | None = None,
    ) -> RefusedInput | None:
        """Open a checkpoint; a decision held for it lands now if it still may."""
        gate = self._gates[name]
        gate.status, gate.opened_at, gate.deadline = CheckpointStatus.OPEN, now, deadline
        gate.decision, gate.reminded_at = None, None
        gate.openings += 1
        gate.context = dict(context or {})
        if gate.phase_index == ANY_PHASE and phase is not None:
            gate.phase = phase
        held = self._held.pop(name, None)
        if held is None:
            return None
        # The client's sending that was held hears the outcome under its own name.
        delivery = self._landed_by.get(held.decision_id)
        if held.opening != gate.openings:  # only ever held for a first opening; kept as a guard
            self._receipts.pop(held.decision_id, None)
            reason = f"held for opening {held.opening} of {name}, but opening {gate.openings} opened"
            payload = held.model_dump(mode="json")
            return self.refuse(now=now, via=held.via, reason=reason, payload=payload, delivery=delivery)
        as_input = DecisionInput(
            checkpoint=name,
            approver=held.approver,
            decision=held.decision,
            comment=held.comment,
            target_phase=held.target_phase,
            budget_usd=held.budget_usd,
        )
        try:
            self._check_approver(gate, held.approver)
            self._check_bounds(gate, as_input)
        except InvalidDecisionError as exc:
            self._receipts.pop(held.decision_id, None)
            payload = held.model_dump(mode="json")
            return self.refuse(now=now, via=held.via, reason=str(exc), payload=payload, delivery=delivery)
        self._apply(gate, held, now)
        receipt = self._receipts.get(held.decision_id)
        if receipt is not None:  # what its sender hears from now on: it landed
            self._receipts[held.decision_id] = receipt.model_copy(update={"status": ReceiptStatus.APPLIED})
        return None

    def opening(self, name: str) -> int:
        return self._gates[name].openings

    def receipt_for(self, decision_id: str, delivery: str | None = None) -> DecisionReceipt | None:
        """The receipt of `decision_id`, as `delivery` should hear it: `duplicate` when
        another sending of the same decision landed it."""
        receipt = self._receipts.get(decision_id)
        landed_by = self._landed_by.get(decision_id)
        if receipt is not None and delivery is not None and landed_by is not None and landed_by != delivery:
            return receipt.model_copy(update={"status": ReceiptStatus.DUPLICATE})
        return receipt

    def refusal_for(self, decision_id: str, delivery: str | None = None) -> RefusedInput | None:
        """The latest refusal of an input that carried this decision_id (and came by
        `delivery`, when given: an earlier sending's refusal is not this one's)."""
        for refused in reversed(self.refused):
            if delivery is not None and refused.delivery != delivery:
                continue
            if isinstance(refused.payload, dict) and refused.payload.get("decision_id") == decision_id:
                return refused
        return None

    def settled(self, name: str) -> bool:
        return self._gates[name].status is not CheckpointStatus.OPEN

    def decision_for(self, name: str) -> DecisionRecord | None:
        return self._gates[name].decision

    def remind(self, name: str, now: datetime) -> None:
        self._gates[name].reminded_at = now

    def expire(self, name: str) -> None:
        self._gates[name].status = CheckpointStatus.EXPIRED

    def cancel_open(self) -> list[str]:
        """The run is cancelled: close what is open (returned) and drop held decisions."""
        self.cancelled = True
        closed = [g.spec.name for g in self._gates.values() if g.status is CheckpointStatus.OPEN]
        for name in closed:
            self._gates[name].status = CheckpointStatus.CANCELLED
        for held in self._held.values():
            self._receipts.pop(held.decision_id, None)
        self._held.clear()
        return closed

    def title(self, name: str) -> str:
        return self._gates[name].spec.title

    def reopen_from(self, phase_index: int) -> None:
        """An iterate or pivot: checkpoints from `phase_index` on will open again."""
        for gate in self._gates.values():
            if gate.phase_index >= phase_index:
                gate.status = CheckpointStatus.UPCOMING

    def pending(self) -> tuple[CheckpointView, ...]:
        return tuple(
            g.view(self._deciders(g)) for g in self._gates.values() if g.status is CheckpointStatus.OPEN
        )

    def _deciders(self, gate: _Gate) -> tuple[str, ...]:
        """Who may decide `gate` (the people of its roles in the roster); () when anyone may."""
        if not gate.spec.approvers or not self._roster:
            return ()
        return tuple(sorted({p for role in gate.spec.approvers for p in self._roster.get(role, ())}))

    def awaiting(self) -> list[str]:
        return [v.name for v in self.pending()]
