"""The default pipeline as it was when runs did not carry their spec: frozen.

Runs started before every front door put the spec in the run's input have
`spec=None`; they go on with exactly this, so editing `boomerang/pipelines.py` can
never change a run in flight. Never edit it; new runs always carry their own spec.
"""

from __future__ import annotations

from boomerang.models.pipeline import PipelineSpec

SPEC_OF_RUNS_WITHOUT_ONE = PipelineSpec.model_validate(
    {
        "name": "startup_validation",
        "phases": [
            {
                "name": "onboarding",
                "title": "Phase 0 · Onboarding",
                "function": "phase_0_onboarding",
                "timeout": "PT1H",
                "heartbeat_timeout": "PT30S",
                "max_attempts": 3,
                "expected_seconds": 60.0,
                "tasks": [],
                "checkpoints": [
                    {
                        "name": "approve_founders_brief",
                        "title": "Approve the founder's brief",
                        "options": ["approve", "reject", "iterate"],
                        "approvers": ["founder"],
                        "timeout": "P7D",
                        "reminder_after": "P1D",
                        "on_expiry": "reject",
                        "recommendation": "approve",
                    }
                ],
                "max_iterations": 3,
            },
            {
                "name": "vpc_discovery",
                "title": "Phase 1 · VPC Discovery",
                "function": "phase_1_vpc_discovery",
                "timeout": "PT1H",
                "heartbeat_timeout": "PT30S",
                "max_attempts": 3,
                "expected_seconds": 60.0,
                "tasks": [
                    {
                        "task_type": "research",
                        "payload": {},
                        "brief_field": "topic",
                        "brief_chars": 2000,
                        "expected_seconds": 60.0,
                    }
                ],
                "checkpoints": [
                    {
                        "name": "approve_customer_profile",
                        "title": "Approve the customer profile",
                        "options": ["approve", "reject", "iterate"],
                        "approvers": ["founder"],
                        "timeout": "P7D",
                        "reminder_after": "P1D",
                        "on_expiry": "reject",
                        "recommendation": "approve",
                    },
                    {
                        "name": "approve_vpc_completion",
                        "title": "Approve the value proposition canvas",
                        "options": ["approve", "reject", "iterate"],
                        "approvers": ["founder"],
                        "timeout": "P7D",
                        "reminder_after": "P1D",
                        "on_expiry": "reject",
                        "recommendation": "approve",
                    },
                ],
                "max_iterations": 3,
            },
            {
                "name": "desirability",
                "title": "Phase 2 · Desirability",
                "function": "phase_2_desirability",
                "timeout": "PT1H",
                "heartbeat_timeout": "PT30S",
                "max_attempts": 3,
                "expected_seconds": 60.0,
                "tasks": [],
                "checkpoints": [
                    {
                        "name": "approve_experiment_plan",
                        "title": "Approve the experiment plan",
                        "options": ["approve", "reject", "iterate"],
                        "approvers": ["founder"],
                        "timeout": "P7D",
                        "reminder_after": "P1D",
                        "on_expiry": "reject",
                        "recommendation": "approve",
                    },
                    {
                        "name": "approve_campaign_launch",
                        "title": "Approve the campaign launch",
                        "options": ["approve", "reject", "iterate"],
                        "approvers": ["founder"],
                        "timeout": "P7D",
                        "reminder_after": "P1D",
                        "on_expiry": "reject",
                        "recommendation": "approve",
                    },
                    {
                        "name": "approve_spend_increase",
                        "title": "Approve the ad-spend increase",
                        "options": ["approve", "reject"],
                        "approvers": ["founder", "finance"],
                        "timeout": "P7D",
                        "reminder_after": "P1D",
                        "on_expiry": "reject",
                        "recommendation": "approve",
                    },
                    {
                        "name": "approve_desirability_gate",
                        "title": "Desirability gate",
                        "options": ["approve", "reject", "iterate", "pivot", "override_proceed"],
                        "approvers": ["founder", "advisor"],
                        "timeout": "P7D",
                        "reminder_after": "P1D",
                        "on_expiry": "reject",
                        "recommendation": "approve",
                    },
                ],
                "max_iterations": 3,
            },
            {
                "name": "feasibility",
                "title": "Phase 3 · Feasibility",
                "function": "phase_3_feasibility",
                "timeout": "PT1H",
                "heartbeat_timeout": "PT30S",
                "max_attempts": 3,
                "expected_seconds": 60.0,
                "tasks": [],
                "checkpoints": [
                    {
                        "name": "approve_feasibility_gate",
                        "title": "Feasibility gate",
                        "options": ["approve", "reject", "iterate", "pivot", "override_proceed"],
                        "approvers": ["founder", "advisor"],
                        "timeout": "P7D",
                        "reminder_after": "P1D",
                        "on_expiry": "reject",
                        "recommendation": "approve",
                    }
                ],
                "max_iterations": 3,
            },
            {
                "name": "viability",
                "title": "Phase 4 · Viability",
                "function": "phase_4_viability",
                "timeout": "PT1H",
                "heartbeat_timeout": "PT30S",
                "max_attempts": 3,
                "expected_seconds": 60.0,
                "tasks": [],
                "checkpoints": [
                    {
                        "name": "approve_viability_gate",
                        "title": "Viability gate",
                        "options": ["approve", "reject", "iterate", "pivot", "override_proceed"],
                        "approvers": ["founder", "advisor"],
                        "timeout": "P7D",
                        "reminder_after": "P1D",
                        "on_expiry": "reject",
                        "recommendation": "approve",
                    },
                    {
                        "name": "request_human_decision",
                        "title": "Final decision: proceed, pivot or stop",
                        "options": ["approve", "reject", "pivot"],
                        "approvers": ["founder"],
                        "timeout": "P7D",
                        "reminder_after": "P1D",
                        "on_expiry": "reject",
                        "recommendation": "approve",
                    },
                ],
                "max_iterations": 3,
            },
        ],
        "max_pivots": 2,
    }
)
