"""Runs and approvals, kept current from the events in the recording transaction.

Derived from the event kind alone, so replaying the events rebuilds them. A run
that reached a terminal state keeps it: a late phase event cannot reopen it.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncCursor

from boomerang.models.events import EventKind, RunEvent
from boomerang.models.pipeline import Decision
from boomerang.store.errors import InvalidEventError
from boomerang.store.pg_values import as_utc, pg_text

DECISIONS = frozenset(d.value for d in Decision)
# The approvals projection speaks of outcomes: "approved", not "approve".
_APPROVAL_STATUS = {Decision.APPROVE.value: "approved", Decision.REJECT.value: "rejected"}
_TERMINAL: dict[EventKind, str] = {
    EventKind.PIPELINE_COMPLETED: "completed",
    EventKind.PIPELINE_REJECTED: "rejected",
    EventKind.PIPELINE_EXPIRED: "expired",
    EventKind.PIPELINE_FAILED: "failed",
    EventKind.PIPELINE_CANCELLED: "cancelled",
}
_CLOSES_APPROVAL = frozenset(
    {EventKind.CHECKPOINT_DECIDED, EventKind.CHECKPOINT_EXPIRED, EventKind.CHECKPOINT_CANCELLED}
)
_RUN_STATUS: dict[EventKind, str] = {
    EventKind.PIPELINE_STARTED: "running",
    EventKind.PHASE_STARTED: "running",
    EventKind.CHECKPOINT_OPENED: "awaiting_approval",
    EventKind.CHECKPOINT_DECIDED: "running",
    **_TERMINAL,
}

# One upsert for every run-level event. COALESCE keeps what an earlier event set;
# the CASEs stop a late non-terminal event from reopening a finished run.
_UPSERT_RUN = """
INSERT INTO runs AS r (run_id, tenant, project_id, kind, status, current_phase,
                       started_at, completed_at, updated_at)
VALUES (%(run_id)s, %(tenant)s, %(project_id)s, %(kind)s, %(status)s, %(phase)s,
        %(started_at)s, %(completed_at)s, %(at)s)
ON CONFLICT (run_id) DO UPDATE SET
    project_id    = COALESCE(r.project_id, EXCLUDED.project_id),
    status        = CASE WHEN r.completed_at IS NULL OR EXCLUDED.completed_at IS NOT NULL
                         THEN EXCLUDED.status ELSE r.status END,
    current_phase = CASE WHEN r.completed_at IS NULL
                         THEN COALESCE(EXCLUDED.current_phase, r.current_phase)
                         ELSE r.current_phase END,
    started_at    = COALESCE(r.started_at, EXCLUDED.started_at),
    completed_at  = COALESCE(r.completed_at, EXCLUDED.completed_at),
    updated_at    = GREATEST(r.updated_at, EXCLUDED.updated_at)
"""

_OPEN_APPROVAL = """
INSERT INTO approvals AS a (run_id, checkpoint, tenant, phase, status, opened_at, deadline)
VALUES (%(run_id)s, %(checkpoint)s, %(tenant)s, %(phase)s, 'pending', %(at)s, %(deadline)s)
ON CONFLICT (run_id, checkpoint) DO UPDATE SET
    phase = EXCLUDED.phase, status = 'pending', opened_at = EXCLUDED.opened_at,
    deadline = EXCLUDED.deadline, decided_at = NULL, decided_by = NULL, decision = NULL
"""

_CLOSE_APPROVAL = """
UPDATE approvals SET status = %(status)s, decided_at = %(at)s,
                     decided_by = %(decided_by)s, decision = %(decision)s
WHERE run_id = %(run_id)s AND checkpoint = %(checkpoint)s
"""


def check_projectable(event: RunEvent) -> None:
    """Refuse, before any write, an event the projections could not hold."""
    if event.kind is EventKind.CHECKPOINT_DECIDED and event.decision not in DECISIONS:
        raise InvalidEventError(
            f"checkpoint_decided needs a decision in {sorted(DECISIONS)}, got {event.decision!r}"
        )
    needs_checkpoint = {
        EventKind.CHECKPOINT_OPENED,
        EventKind.CHECKPOINT_DECIDED,
        EventKind.CHECKPOINT_EXPIRED,
        EventKind.CHECKPOINT_CANCELLED,
    }
    if event.kind in needs_checkpoint and not event.checkpoint:
        raise InvalidEventError(f"{event.kind.value} needs a checkpoint name")


async def project(cur: AsyncCursor[Any], event: RunEvent) -> None:
    """Apply `event` to the projections (inside the caller's transaction)."""
    at = as_utc(event.occurred_at)
    params: dict[str, Any] = {
        "run_id": pg_text(event.run_id),
        "tenant": pg_text(event.tenant),
        "checkpoint": pg_text(event.checkpoint),
        "phase": pg_text(event.phase),
        "at": at,
    }
    status = _RUN_STATUS.get(event.kind)
    if status is not None:
        await cur.execute(
            _UPSERT_RUN,
            {
                **params,
                "project_id": pg_text(event.project_id),
                "kind": pg_text(event.task_type) or "pipeline",
                "status": status,
                "phase": params["phase"] if event.kind is EventKind.PHASE_STARTED else None,
                "started_at": at if event.kind is EventKind.PIPELINE_STARTED else None,
                "completed_at": at if event.kind in _TERMINAL else None,
            },
        )
    if event.kind is EventKind.CHECKPOINT_OPENED:
        await cur.execute(_OPEN_APPROVAL, {**params, "deadline": as_utc(event.deadline)})
    elif event.kind in _CLOSES_APPROVAL:
        expired = event.kind is not EventKind.CHECKPOINT_DECIDED  # closed with no decision
        await cur.execute(
            _CLOSE_APPROVAL,
            {
                **params,
                "status": event.kind.value.removeprefix("checkpoint_")
                if expired
                else _APPROVAL_STATUS.get(event.decision or "", event.decision),
                "decided_by": None if expired else pg_text(event.approver),
                "decision": None if expired else event.decision,
            },
        )
