"""The Charter row: what a customer may see of one event, and nothing else.

`CharterRow` is an allow-list with `extra="forbid"`, built field by field from a
`RunEvent` (never by deleting keys from a dict, which fails open the day a field
is added). Its fields are exactly the columns of the `charter` table; a test
holds the two together.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from boomerang.models.events import RunEvent
from boomerang.store.message_guard import safe_message
from boomerang.store.pg_values import as_utc, pg_text


class CharterRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_key: str
    run_id: str
    tenant: str
    project_id: str | None
    event: str
    status: str
    phase: str | None
    checkpoint: str | None
    boomer_ang_id: str | None
    task_type: str | None
    execution_time_s: float | None
    message: str
    deadline: datetime | None
    decision: str | None
    occurred_at: datetime


def charter_row(event: RunEvent) -> CharterRow:
    """The customer's view of `event`; the message is checked for leaks first."""
    return CharterRow(
        event_key=pg_text(event.event_key),
        run_id=pg_text(event.run_id),
        tenant=pg_text(event.tenant),
        project_id=pg_text(event.project_id),
        event=event.kind.value,
        status=pg_text(event.status),
        phase=pg_text(event.phase),
        checkpoint=pg_text(event.checkpoint),
        boomer_ang_id=pg_text(event.boomer_ang_id),
        task_type=pg_text(event.task_type),
        execution_time_s=event.execution_time_s,
        message=pg_text(safe_message(event)),
        deadline=as_utc(event.deadline),
        decision=pg_text(event.decision),
        occurred_at=as_utc(event.occurred_at),
    )
