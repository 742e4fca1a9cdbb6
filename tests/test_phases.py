"""The phase functions do honest, deterministic work on their input."""

from __future__ import annotations

import pytest

from modal_app import phases
from modal_app.contracts import PhaseRequest
from modal_app.functions import PHASE_FUNCTIONS, invoke
from modal_app.phases import _sample_size

BRIEF = (
    "We build a mobile app with payments for dog walkers. Owners struggle to find walkers "
    "they trust, and booking is slow and manual. We believe owners would pay for instant booking."
)


def _req(**kw: object) -> PhaseRequest:
    return PhaseRequest.model_validate({"run_id": "r", "phase": "x", "brief": BRIEF, **kw})


def test_onboarding_extracts_problem_solution_and_ranks_hedged_claims() -> None:
    out = phases.onboarding(_req())
    brief = out["founders_brief"]
    assert isinstance(brief, dict)
    assert brief["problem"] == ["Owners struggle to find walkers they trust, and booking is slow and manual."]
    assert brief["solution"] == ["We build a mobile app with payments for dog walkers."]
    top = out["assumptions"][0]
    assert top["claim"].startswith("We believe")


def test_sample_size_matches_the_textbook_formula() -> None:
    # 2% -> 5% at 5% two-sided / 80% power needs ~ 588 per arm (Fleiss without correction).
    assert _sample_size(0.02, 0.05) == 588
    assert _sample_size(0.10, 0.20) < _sample_size(0.10, 0.15)


def test_viability_computes_unit_economics_and_validates_inputs() -> None:
    out = phases.viability(
        _req(
            context={
                "monthly_price_usd": 50,
                "gross_margin": 0.8,
                "monthly_churn": 0.04,
                "cac_usd": 200,
            }
        )
    )
    assert out["unit_economics"] == {
        "ltv_usd": 1000.0,
        "cac_usd": 200.0,
        "ltv_to_cac": 5.0,
        "payback_months": 5.0,
    }
    assert out["verdict"] == "viable"
    with pytest.raises(ValueError, match="monthly_churn"):
        phases.viability(_req(context={"monthly_churn": 0}))


def test_feasibility_counts_components() -> None:
    out = phases.feasibility(_req(context={"team_size": 3}))
    assert out["components"] == ["app", "mobile", "payments"]
    assert out["effort_person_weeks"] == 13 and out["calendar_weeks"] == 5 and out["risk"] == "medium"


def test_iteration_feedback_is_carried_into_the_output() -> None:
    out = phases.vpc_discovery(_req(iteration=2, feedback=("focus on cats",), hypothesis="cat owners"))
    assert (out["iteration"], out["addressed_feedback"], out["hypothesis"]) == (
        2,
        ["focus on cats"],
        "cat owners",
    )


def test_every_registered_function_runs_through_invoke() -> None:
    previous: dict[str, object] = {}
    for name in PHASE_FUNCTIONS:
        result = invoke(
            PHASE_FUNCTIONS[name], {"run_id": "r", "phase": name, "brief": BRIEF, "previous": previous}
        )
        assert result["output"] and result["started_at"] <= result["finished_at"]
        previous[name.split("_", 2)[2]] = result["output"]
