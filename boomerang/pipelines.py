"""The default pipeline: the startup-validation pipeline of five phases and ten checkpoints."""

from __future__ import annotations

from boomerang.models.pipeline import CheckpointSpec, Decision, PhaseSpec, PhaseTask, PipelineSpec

_GATE = (Decision.APPROVE, Decision.REJECT, Decision.ITERATE, Decision.PIVOT)
_WITH_OVERRIDE = (*_GATE, Decision.OVERRIDE_PROCEED)


def _cp(name: str, title: str, *, roles: tuple[str, ...] = ("founder",), **kw: object) -> CheckpointSpec:
    return CheckpointSpec.model_validate({"name": name, "title": title, "approvers": roles, **kw})


def startup_validation_pipeline() -> PipelineSpec:
    return PipelineSpec(
        name="startup_validation",
        phases=(
            PhaseSpec(
                name="onboarding",
                title="Phase 0 · Onboarding",
                function="phase_0_onboarding",
                checkpoints=(_cp("approve_founders_brief", "Approve the founder's brief"),),
            ),
            PhaseSpec(
                name="vpc_discovery",
                title="Phase 1 · VPC Discovery",
                function="phase_1_vpc_discovery",
                # Scout_Ang researches the market the brief describes, beside the canvas.
                tasks=(PhaseTask(task_type="research", brief_field="topic"),),
                checkpoints=(
                    _cp("approve_customer_profile", "Approve the customer profile"),
                    _cp("approve_vpc_completion", "Approve the value proposition canvas"),
                ),
            ),
            PhaseSpec(
                name="desirability",
                title="Phase 2 · Desirability",
                function="phase_2_desirability",
                checkpoints=(
                    _cp("approve_experiment_plan", "Approve the experiment plan"),
                    _cp("approve_campaign_launch", "Approve the campaign launch"),
                    _cp(
                        "approve_spend_increase",
                        "Approve the ad-spend increase",
                        roles=("founder", "finance"),
                        options=(Decision.APPROVE, Decision.REJECT),
                    ),
                    _cp(
                        "approve_desirability_gate",
                        "Desirability gate",
                        roles=("founder", "advisor"),
                        options=_WITH_OVERRIDE,
                    ),
                ),
            ),
            PhaseSpec(
                name="feasibility",
                title="Phase 3 · Feasibility",
                function="phase_3_feasibility",
                checkpoints=(
                    _cp(
                        "approve_feasibility_gate",
                        "Feasibility gate",
                        roles=("founder", "advisor"),
                        options=_WITH_OVERRIDE,
                    ),
                ),
            ),
            PhaseSpec(
                name="viability",
                title="Phase 4 · Viability",
                function="phase_4_viability",
                checkpoints=(
                    _cp(
                        "approve_viability_gate",
                        "Viability gate",
                        roles=("founder", "advisor"),
                        options=_WITH_OVERRIDE,
                    ),
                    _cp(
                        "request_human_decision",
                        "Final decision: proceed, pivot or stop",
                        options=(Decision.APPROVE, Decision.REJECT, Decision.PIVOT),
                    ),
                ),
            ),
        ),
    )
