"""What a checkpoint shows the person deciding it: pure functions of the run's state.

The phase's own output supplies `summary` and `recommendation` (see
`modal_app/phases.py`); a function that returns neither still gets a summary made
from its output's fields and the checkpoint's default recommendation. Each option
says what it would do in this run now (which phase comes next, how many iterations
or pivots are left), so nobody has to know the pipeline by heart.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from pydantic import JsonValue

from boomerang.models.decisions import CheckpointContext, OptionEffect
from boomerang.models.pipeline import CheckpointSpec, Decision, PipelineSpec
from boomerang.money import usd_text
from workflows.machine import PipelineMachine

_SUMMARY_CHARS = 500
DEFAULT_WHY = "the checkpoint's default; the phase gave no recommendation of its own"


def phase_checkpoint_context(
    machine: PipelineMachine, checkpoint: CheckpointSpec, output: JsonValue
) -> CheckpointContext:
    """Context of a checkpoint of the machine's current phase, whose output is `output`."""
    spec, phase_index = machine.spec, machine.index or 0
    iterations, pivots = machine.iterations[spec.phases[phase_index].name], machine.pivots
    out = output if isinstance(output, dict) else {}
    decision, why = _recommendation(checkpoint, out)
    return CheckpointContext(
        summary=_summary(out),
        recommendation=decision,
        why=why,
        options=tuple(
            OptionEffect(decision=o, effect=_effect(spec, phase_index, checkpoint, o, iterations, pivots))
            for o in checkpoint.options
        ),
    )


def budget_checkpoint_context(
    checkpoint: CheckpointSpec, *, next_step: str, spent: Decimal, estimate: Decimal, budget: Decimal
) -> CheckpointContext:
    needed = spent + estimate
    effects = {
        Decision.APPROVE: (
            f"raise the budget (budget_usd; default {usd_text(max(budget * 2, needed))} USD) "
            f"and run {next_step}"
        ),
        Decision.REJECT: "stop the run here; it ends rejected",
    }
    return CheckpointContext(
        summary=(
            f"{next_step} would bring spend to {usd_text(needed)} USD, "
            f"over the budget of {usd_text(budget)} USD"
        ),
        recommendation=None,
        why="spending more is the approver's call",
        options=tuple(
            OptionEffect(decision=o, effect=effects.get(o, _GENERIC[o])) for o in checkpoint.options
        ),
        next=next_step,
        spent_usd=usd_text(spent),
        estimate_usd=usd_text(estimate),
        budget_usd=usd_text(budget),
    )


def _summary(out: Mapping[str, JsonValue]) -> str:
    given = out.get("summary")
    if isinstance(given, str) and given.strip():
        text = given.strip()
    elif out:
        text = "output fields: " + ", ".join(sorted(k for k in out if k != "specialists"))
    else:
        text = "the phase returned no output"
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


def _recommendation(checkpoint: CheckpointSpec, out: Mapping[str, JsonValue]) -> tuple[Decision | None, str]:
    advice = out.get("recommendation")
    if isinstance(advice, dict):
        decision, why = advice.get("decision"), advice.get("why")
        if isinstance(decision, str) and decision in checkpoint.options:
            return Decision(decision), why if isinstance(why, str) else ""
    if checkpoint.recommendation is None:
        return None, ""
    return checkpoint.recommendation, DEFAULT_WHY


_GENERIC = {
    Decision.APPROVE: "accept and go on",
    Decision.REJECT: "stop the run here; it ends rejected",
    Decision.ITERATE: "run the phase again with your comment as feedback",
    Decision.PIVOT: "go back to an earlier phase with your comment as the new hypothesis",
    Decision.OVERRIDE_PROCEED: "go on against the recommendation; recorded as an override",
}


def _effect(
    spec: PipelineSpec,
    index: int,
    checkpoint: CheckpointSpec,
    option: Decision,
    iterations: int,
    pivots: int,
) -> str:
    phase = spec.phases[index]
    if option in (Decision.APPROVE, Decision.OVERRIDE_PROCEED):
        names = [c.name for c in phase.checkpoints]
        following = phase.checkpoints[names.index(checkpoint.name) + 1 :]
        if following:
            then = f"open {following[0].name}"
        elif index + 1 < len(spec.phases):
            then = f"run {spec.phases[index + 1].title}"
        else:
            then = "finish the run (completed)"
        base = "accept" if option is Decision.APPROVE else "go on against the recommendation"
        return f"{base} and {then}"
    if option is Decision.ITERATE:
        left = phase.max_iterations - iterations
        if left <= 0:
            return f"not available: all {phase.max_iterations} iterations of {phase.name} are used"
        return (
            f"run {phase.title} again with your comment as feedback ({left} of {phase.max_iterations} left)"
        )
    if option is Decision.PIVOT:
        left = spec.max_pivots - pivots
        if left <= 0:
            return f"not available: all {spec.max_pivots} pivots of this run are used"
        back = spec.phases[max(0, index - 1)].name
        return (
            f"go back to an earlier phase (target_phase, default {back}) with your comment as the "
            f"new hypothesis ({left} of {spec.max_pivots} pivots left)"
        )
    return _GENERIC[option]
