"""What a validation pipeline does next: a pure state machine, no Temporal imports.

The workflow asks, carries out the typed command it gets, and reports back:

    command = machine.start()                      # RunPhase(0)
    while not isinstance(command, Finish):
        match command:
            case RunPhase():       ...run it...;  command = machine.phase_done()
            case OpenCheckpoint(): record = ...wait...;  command = machine.decided(command.checkpoint, record)

The machine owns the phase index, the iterations of each phase, the pivots, the
feedback and hypothesis a re-run gets, and the budget gate. Adding a decision kind
is the enum (`boomerang.models.pipeline.Decision`) plus `_after` and `check` here;
every rule is testable without a server (tests/test_machine.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import assert_never

from boomerang.errors import InvalidDecisionError
from boomerang.models.decisions import DecisionRecord, RunStatus
from boomerang.models.pipeline import CheckpointSpec, Decision, ExpiryPolicy, PhaseSpec, PipelineSpec

# -- commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPhase:
    """Run phase `index` (its compute function, then its specialist tasks)."""

    index: int
    phase: PhaseSpec
    iteration: int
    feedback: tuple[str, ...]
    hypothesis: str | None


@dataclass(frozen=True)
class OpenCheckpoint:
    """Open `checkpoint` (of phase `index`) and wait for a decision or its deadline."""

    index: int
    checkpoint: CheckpointSpec


@dataclass(frozen=True)
class Finish:
    status: RunStatus
    reason: str


Command = RunPhase | OpenCheckpoint | Finish


@dataclass(frozen=True)
class WithinBudget:
    """The paid work may go ahead."""


@dataclass(frozen=True)
class OverBudget:
    """The paid work would cross the budget: ask at the budget checkpoint first."""

    spent: Decimal
    estimate: Decimal
    budget: Decimal


BudgetCommand = WithinBudget | OverBudget | Finish

# Decisions that let the run go on past their checkpoint.
_GO_ON = frozenset({Decision.APPROVE, Decision.OVERRIDE_PROCEED})


# -- the machine -------------------------------------------------------------------------


@dataclass
class PipelineMachine:
    spec: PipelineSpec
    budget: Decimal | None = None
    index: int | None = None
    iterations: dict[str, int] = field(default_factory=dict)
    pivots: int = 0
    hypothesis: str | None = None
    feedback: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for phase in self.spec.phases:
            self.iterations.setdefault(phase.name, 0)
            self.feedback.setdefault(phase.name, [])

    @property
    def phase(self) -> PhaseSpec | None:
        return None if self.index is None else self.spec.phases[self.index]

    # -- progression -------------------------------------------------------------------

    def start(self) -> Command:
        return self._run(0)

    def phase_done(self) -> Command:
        """The current phase finished: its first checkpoint, or what follows it."""
        index = self._current()
        checkpoints = self.spec.phases[index].checkpoints
        return OpenCheckpoint(index, checkpoints[0]) if checkpoints else self._next_phase(index)

    def decided(self, checkpoint: CheckpointSpec, record: DecisionRecord | None) -> Command:
        """`checkpoint` was decided (`record`), or expired with no decision (None)."""
        index = self._current()
        if record is None:
            if checkpoint.on_expiry is ExpiryPolicy.PROCEED:
                return self._after_checkpoint(index, checkpoint)
            return Finish(RunStatus.EXPIRED, f"{checkpoint.name} expired with no decision")
        return self._after(index, checkpoint, record)

    def _after(self, index: int, checkpoint: CheckpointSpec, record: DecisionRecord) -> Command:
        phase = self.spec.phases[index]
        match record.decision:
            case Decision.APPROVE | Decision.OVERRIDE_PROCEED:
                return self._after_checkpoint(index, checkpoint)
            case Decision.REJECT:
                return Finish(RunStatus.REJECTED, f"{checkpoint.name} rejected by {record.approver}")
            case Decision.ITERATE:
                self.iterations[phase.name] += 1
                self.feedback[phase.name].append(record.comment or f"iterate at {checkpoint.name}")
                return self._run(index)
            case Decision.PIVOT:
                target = self.pivot_target(index, record.target_phase)
                self.pivots += 1
                self.hypothesis = record.comment or self.hypothesis
                return self._run(target)
            case _:
                assert_never(record.decision)

    def _after_checkpoint(self, index: int, checkpoint: CheckpointSpec) -> Command:
        names = [c.name for c in self.spec.phases[index].checkpoints]
        following = names.index(checkpoint.name) + 1
        if following < len(names):
            return OpenCheckpoint(index, self.spec.phases[index].checkpoints[following])
        return self._next_phase(index)

    def _next_phase(self, index: int) -> Command:
        if index + 1 < len(self.spec.phases):
            return self._run(index + 1)
        return Finish(RunStatus.COMPLETED, "all phases approved")

    def _run(self, index: int) -> RunPhase:
        self.index = index
        phase = self.spec.phases[index]
        return RunPhase(
            index=index,
            phase=phase,
            iteration=self.iterations[phase.name],
            feedback=tuple(self.feedback[phase.name]),
            hypothesis=self.hypothesis,
        )

    def _current(self) -> int:
        if self.index is None:
            raise RuntimeError("no phase has started")  # a workflow bug, never an input
        return self.index

    # -- the rules a decision must meet before it lands ----------------------------------

    def check(self, phase_index: int | None, decision: Decision, target_phase: str | int | None) -> None:
        """Raise `InvalidDecisionError` if `decision` at a checkpoint of `phase_index`
        (None: the budget gate) would go past a bound."""
        if phase_index is None:
            return
        match decision:
            case Decision.ITERATE:
                phase = self.spec.phases[phase_index]
                if self.iterations[phase.name] >= phase.max_iterations:
                    raise InvalidDecisionError(
                        f"phase {phase.name} has been iterated {self.iterations[phase.name]} times, "
                        f"the most allowed ({phase.max_iterations}); approve, reject or pivot instead"
                    )
            case Decision.PIVOT:
                if self.pivots >= self.spec.max_pivots:
                    raise InvalidDecisionError(
                        f"this run has pivoted {self.pivots} times, the most allowed ({self.spec.max_pivots})"
                    )
                self.pivot_target(phase_index, target_phase)
            case Decision.APPROVE | Decision.REJECT | Decision.OVERRIDE_PROCEED:
                return
            case _:
                assert_never(decision)

    def pivot_target(self, from_index: int, target: str | int | None) -> int:
        """The phase a pivot goes back to: named, numbered, or by default the previous one."""
        if target is None:
            return max(0, from_index - 1)
        if isinstance(target, int) or target.isdigit():
            index = int(target)
        else:
            try:
                index = self.spec.phase_index(target)
            except KeyError:
                names = ", ".join(p.name for p in self.spec.phases)
                raise InvalidDecisionError(f"unknown target_phase {target!r}; phases: {names}") from None
        if not 0 <= index <= from_index:
            raise InvalidDecisionError(
                f"target_phase must be this phase or an earlier one (0..{from_index}), got {target!r}"
            )
        return index

    # -- the budget gate -----------------------------------------------------------------

    def before_paid_work(self, *, spent: Decimal, estimate: Decimal) -> WithinBudget | OverBudget:
        """Paid work is about to start: go ahead, or stop at the budget checkpoint first."""
        if self.budget is None or spent + estimate <= self.budget:
            return WithinBudget()
        return OverBudget(spent=spent, estimate=estimate, budget=self.budget)

    def budget_decided(
        self, over: OverBudget, record: DecisionRecord | None, checkpoint: str
    ) -> BudgetCommand:
        """The budget checkpoint was decided (or expired): raise the budget, or stop."""
        if record is None:
            return Finish(RunStatus.EXPIRED, f"{checkpoint} expired with no decision")
        if record.decision not in _GO_ON:
            return Finish(RunStatus.REJECTED, f"{checkpoint} rejected by {record.approver}")
        # Without an amount: enough for the work that asked, and at least double.
        self.budget = record.budget_usd or max(over.budget * 2, over.spent + over.estimate)
        return WithinBudget()
