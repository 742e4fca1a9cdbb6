"""The five phase functions of the startup-validation pipeline.

Each takes a `PhaseRequest` and returns a JSON-able dict. They do honest,
deterministic work on the brief and on earlier phases' outputs; LLM-backed content
plugs in through the compute layer's model client.

Every output carries `summary` (one line a person deciding the phase's checkpoints
reads first) and `recommendation` (`{"decision", "why"}`, from the phase's own
figures): the run shows both at the checkpoints the phase gates.
"""

from __future__ import annotations

import math
from typing import Any

from modal_app import text
from modal_app.contracts import PhaseRequest

# JSON-able output; `FunctionResult` validates it on the way out.
Output = dict[str, Any]


def _num(req: PhaseRequest, key: str, default: float) -> float:
    """A numeric input from the run's context, with an error that names it."""
    value = req.context.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"context.{key} must be a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"context.{key} must be a number, got {value!r}") from None


def _feedback_block(req: PhaseRequest) -> Output:
    return {
        "iteration": req.iteration,
        "addressed_feedback": list(req.feedback),
        "hypothesis": req.hypothesis,
    }


def _advice(decision: str, why: str) -> Output:
    return {"recommendation": {"decision": decision, "why": why}}


def _quote(sentence: str, limit: int = 80) -> str:
    return f"“{sentence if len(sentence) <= limit else sentence[: limit - 1] + '…'}”"


def _prev(req: PhaseRequest, phase: str) -> dict[str, Any]:
    value = req.previous.get(phase)
    return value if isinstance(value, dict) else {}


def onboarding(req: PhaseRequest) -> Output:
    source = req.brief if req.hypothesis is None else f"{req.brief}\n{req.hypothesis}"
    sents = text.sentences(source)
    problems = text.with_cues(sents, text.PAIN_CUES)
    solutions = text.with_cues(sents, text.SOLUTION_CUES)
    # Riskiest (most hedged) claims first: they are what the experiments must test.
    ranked = sorted(sents, key=lambda s: (-text.hedge_score(s), s))
    assumptions = [{"claim": s, "risk": round(0.5 + text.hedge_score(s) / 2, 2)} for s in ranked]
    missing = [what for what, found in (("problem", problems), ("solution", solutions)) if not found]
    summary = (
        f"{len(sents)} sentences; problem: {_quote(problems[0]) if problems else 'none stated'}; "
        f"solution: {_quote(solutions[0]) if solutions else 'none stated'}; "
        f"{min(len(assumptions), 10)} assumptions to test"
    )
    advice = (
        _advice(
            "iterate",
            f"the brief states no {' and no '.join(missing)}: say who hurts, how, and what you offer",
        )
        if missing
        else _advice("approve", "the brief states a problem and a solution; its riskiest claims are listed")
    )
    return {
        "summary": summary,
        **advice,
        "founders_brief": {
            "problem": problems[:3] or sents[:1],
            "solution": solutions[:3],
            "keywords": text.keywords(source),
            "sentences": len(sents),
            "words": len(text.words(source)),
        },
        "assumptions": assumptions[:10],
        **_feedback_block(req),
    }


def vpc_discovery(req: PhaseRequest) -> Output:
    brief = _prev(req, "onboarding").get("founders_brief", {})
    sents = text.sentences(req.brief)
    pains = text.with_cues(sents, text.PAIN_CUES)
    gains = text.with_cues(sents, text.GAIN_CUES)
    jobs = [s for s in sents if s not in pains and s not in gains][:5]
    pain_kw = text.keywords(" ".join(pains), 10)
    solution_kw = text.keywords(" ".join(brief.get("solution", [])) or req.brief, 10)
    fit = text.overlap(pain_kw, solution_kw)
    summary = f"{len(jobs)} jobs, {len(pains[:5])} pains, {len(gains[:5])} gains; fit score {fit:.2f}"
    advice = (
        _advice("iterate", "no customer pain found in the brief: describe what goes wrong for them today")
        if not pains
        else _advice("approve", f"pains to test the solution against: {len(pains[:5])}")
    )
    return {
        "summary": summary,
        **advice,
        "customer_profile": {"jobs": jobs, "pains": pains[:5], "gains": gains[:5]},
        "value_map": {
            "pain_relievers": pain_kw[:5],
            "gain_creators": text.keywords(" ".join(gains), 5),
        },
        "fit_score": fit,
        **_feedback_block(req),
    }


def _sample_size(p_base: float, p_target: float, z_alpha: float = 1.96, z_beta: float = 0.84) -> int:
    """Visitors per arm to tell p_target from p_base (two-sided 5%, 80% power)."""
    p_bar = (p_base + p_target) / 2
    num = z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_beta * math.sqrt(
        p_base * (1 - p_base) + p_target * (1 - p_target)
    )
    return math.ceil(num**2 / (p_target - p_base) ** 2)


def desirability(req: PhaseRequest) -> Output:
    assumptions = _prev(req, "onboarding").get("assumptions", [])
    base = _num(req, "baseline_conversion", 0.02)
    target = _num(req, "target_conversion", 0.05)
    if not 0 < base < target < 1:
        raise ValueError("need 0 < baseline_conversion < target_conversion < 1")
    n = _sample_size(base, target)
    cpc = _num(req, "cost_per_click_usd", 1.5)
    experiments = [
        {
            "assumption": a.get("claim"),
            "method": "landing_page" if i % 2 == 0 else "customer_interviews",
            "sample_size": n if i % 2 == 0 else 12,
            "success_if": f"conversion >= {target:.1%}" if i % 2 == 0 else ">= 8 of 12 confirm pain",
        }
        for i, a in enumerate(assumptions[:4])
    ]
    ad_budget = round(2 * n * cpc, 2)
    summary = f"{len(experiments)} experiments; {n} visitors per arm; ad budget ${ad_budget:,.2f}"
    advice = (
        _advice("approve", f"each of the {len(experiments)} riskiest assumptions has a test and a bar")
        if experiments
        else _advice("iterate", "no assumptions to test: phase onboarding found none in the brief")
    )
    return {
        "summary": summary,
        **advice,
        "experiments": experiments,
        "visitors_per_arm": n,
        "ad_budget_usd": ad_budget,
        **_feedback_block(req),
    }


_COMPONENT_WEEKS = {
    "api": 2,
    "mobile": 6,
    "app": 4,
    "web": 3,
    "payments": 3,
    "marketplace": 8,
    "ml": 6,
    "model": 5,
    "ai": 5,
    "integration": 3,
    "dashboard": 2,
    "hardware": 16,
    "realtime": 4,
}


def feasibility(req: PhaseRequest) -> Output:
    found = {w for w in text.words(req.brief) if w in _COMPONENT_WEEKS}
    weeks = sum(_COMPONENT_WEEKS[c] for c in found) or 4
    team = max(1, int(_num(req, "team_size", 2)))
    risk = "high" if weeks > 16 else "medium" if weeks > 8 else "low"
    calendar = math.ceil(weeks / team)
    summary = (
        f"components: {', '.join(sorted(found)) or 'none named'}; {weeks} person-weeks, "
        f"{calendar} calendar weeks with {team} people; build risk {risk}"
    )
    advice = (
        _advice("pivot", f"{weeks} person-weeks is a high build risk: look for a smaller first product")
        if risk == "high"
        else _advice("approve", f"{weeks} person-weeks is a {risk} build risk for a team of {team}")
    )
    return {
        "summary": summary,
        **advice,
        "components": sorted(found),
        "effort_person_weeks": weeks,
        "calendar_weeks": calendar,
        "risk": risk,
        **_feedback_block(req),
    }


def viability(req: PhaseRequest) -> Output:
    price = _num(req, "monthly_price_usd", 49)
    margin = _num(req, "gross_margin", 0.8)
    churn = _num(req, "monthly_churn", 0.05)
    cac = _num(req, "cac_usd", 300)
    if not (price > 0 and 0 < margin <= 1 and 0 < churn <= 1 and cac >= 0):
        raise ValueError("need price > 0, 0 < gross_margin <= 1, 0 < monthly_churn <= 1, cac >= 0")
    ltv = price * margin / churn
    ratio = ltv / cac if cac else math.inf
    verdict = "viable" if ratio >= 3 else "marginal" if ratio >= 1 else "not_viable"
    shown = f"{ratio:.1f}" if math.isfinite(ratio) else "unbounded (no CAC)"
    summary = f"LTV ${ltv:,.2f}, CAC ${cac:,.2f}, LTV:CAC {shown}; {verdict.replace('_', ' ')}"
    advice = {
        "viable": _advice("approve", f"LTV:CAC {shown} clears the usual bar of 3"),
        "marginal": _advice("iterate", f"LTV:CAC {shown} is under 3: revisit price, margin or churn"),
        "not_viable": _advice("pivot", f"LTV:CAC {shown} is under 1: each customer loses money"),
    }[verdict]
    return {
        "summary": summary,
        **advice,
        "unit_economics": {
            "ltv_usd": round(ltv, 2),
            "cac_usd": cac,
            "ltv_to_cac": round(ratio, 2) if math.isfinite(ratio) else None,
            "payback_months": round(cac / (price * margin), 1),
        },
        "verdict": verdict,
        **_feedback_block(req),
    }
