"""What the inbox pages show, computed from the run's `status` and its Charter.

Pure functions over the models (no I/O): the routes fetch, these shape, the
templates print. Times are shown in UTC with the time left or the age beside them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from boomerang.client import PendingApproval
from boomerang.models.decisions import CheckpointContext, PipelineStatus
from boomerang.models.notify import item_anchor
from boomerang.models.pipeline import Decision
from boomerang.store.charter import CharterRow

# The age filter: checkpoints open at least this long.
AGES: dict[str, timedelta] = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}


def span(delta: timedelta) -> str:
    """A duration as a person reads it: '2d 3h', '45m', 'under a minute'."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if not days:
        parts.append(f"{minutes}m")
    return " ".join(p for p in parts if p != "0m") or "under a minute"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def dom_id(run_id: str, checkpoint: str) -> str:
    """The inbox item's element id; notifications and the run page link to `/inbox#<id>`."""
    return item_anchor(run_id, checkpoint)


@dataclass(frozen=True)
class Filters:
    project: str = ""
    checkpoint: str = ""
    age: str = ""

    def keep(self, item: PendingApproval, now: datetime) -> bool:
        cp = item.checkpoint
        if self.project and item.project_id != self.project:
            return False
        if self.checkpoint and cp.name != self.checkpoint:
            return False
        minimum = AGES.get(self.age)
        return not (minimum and (cp.opened_at is None or now - cp.opened_at < minimum))


@dataclass(frozen=True)
class Item:
    """One pending checkpoint as an inbox entry, with a fresh decision id for its form."""

    pending: PendingApproval
    context: CheckpointContext | None
    time_left: str
    overdue: bool
    age: str
    pivot_targets: tuple[str, ...]
    decision_id: str = field(default_factory=lambda: f"inbox-{secrets.token_hex(8)}")

    @property
    def key(self) -> str:
        return f"{self.pending.run_id}:{self.pending.checkpoint.name}"

    @property
    def dom_id(self) -> str:
        return dom_id(self.pending.run_id, self.pending.checkpoint.name)

    @property
    def is_budget(self) -> bool:
        return self.context is not None and self.context.budget_usd is not None


def item(pending: PendingApproval, now: datetime, *, pivot_targets: tuple[str, ...] = ()) -> Item:
    cp = pending.checkpoint
    try:
        ctx = CheckpointContext.model_validate(cp.context) if cp.context else None
    except ValueError:  # a run from before a field changed: show what there is, decide anyway
        ctx = None
    left = cp.deadline - now if cp.deadline else None
    return Item(
        pending=pending,
        context=ctx,
        time_left="no deadline" if left is None else (f"{span(left)} left" if left > timedelta(0) else "due"),
        overdue=left is not None and left <= timedelta(0),
        age=span(now - cp.opened_at) if cp.opened_at else "—",
        pivot_targets=pivot_targets if Decision.PIVOT in cp.options else (),
    )


def pivot_targets(status: PipelineStatus, phase: str) -> tuple[str, ...]:
    """The phases a pivot may go back to: those that ran before the checkpoint's own."""
    return tuple(name for name in status.outputs if name != phase)


@dataclass(frozen=True)
class PhaseRow:
    name: str
    state: str  # done | current | failed | started


def phases(status: PipelineStatus, charter: list[CharterRow]) -> list[PhaseRow]:
    """Phases in the order the run reached them, with where each stands now."""
    order: list[str] = []
    state: dict[str, str] = {}
    for row in charter:
        if row.phase is None or not row.event.startswith("phase_"):
            continue
        if row.phase not in state:
            order.append(row.phase)
        state[row.phase] = {"phase_completed": "done", "phase_failed": "failed"}.get(row.event, "started")
    if status.phase and status.phase not in state:
        order.append(status.phase)
    rows = [PhaseRow(name, state.get(name, "started")) for name in order]
    return [
        PhaseRow(r.name, "current") if r.name == status.phase and status.status.value in (
            "running", "awaiting_approval") else r
        for r in rows
    ]  # fmt: skip


@dataclass(frozen=True)
class Result:
    """The outcome of one submitted form, shown where the form was."""

    key: str
    ok: bool
    status: str  # applied | duplicate | pending | held | refused
    message: str
