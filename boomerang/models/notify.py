"""Notices to people: a checkpoint opened, was reminded or expired, with a link to its inbox item."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


def item_anchor(run_id: str, checkpoint: str) -> str:
    """The inbox item's element id (`/inbox#<anchor>`)."""
    return "item-" + "".join(c if c.isalnum() else "-" for c in f"{run_id}:{checkpoint}")


def inbox_link(base_url: str, run_id: str, checkpoint: str) -> str:
    return f"{base_url.rstrip('/')}/inbox#{item_anchor(run_id, checkpoint)}"


class NoticeKind(StrEnum):
    OPENED = "opened"
    REMINDED = "reminded"
    EXPIRING = "expiring"
    EXPIRED = "expired"


class ApprovalNotice(BaseModel):
    """What Slack and e-mail say; customer-safe (no costs), like the webhook payload."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    notice_id: str  # the event key: one notice per event however often a run asks
    kind: NoticeKind
    run_id: str
    tenant: str
    project_id: str
    checkpoint: str
    title: str
    phase: str | None = None
    deadline: datetime | None = None
    summary: str = ""
    recommendation: str | None = None
    options: tuple[str, ...] = ()
    link: str  # the inbox item

    def headline(self) -> str:
        verb = {NoticeKind.OPENED: "waits for a decision", NoticeKind.REMINDED: "is still waiting",
                NoticeKind.EXPIRING: "expires soon", NoticeKind.EXPIRED: "expired with no decision",
                }[self.kind]  # fmt: skip
        return f"{self.title} ({self.project_id}) {verb}"

    def text(self) -> str:
        lines = [
            self.headline(),
            f"Run {self.run_id} · phase {self.phase or '-'} · checkpoint {self.checkpoint}",
        ]
        if self.deadline is not None and self.kind is not NoticeKind.EXPIRED:
            lines.append(f"Deadline: {self.deadline:%Y-%m-%d %H:%M} UTC")
        if self.summary:
            lines.append(f"Summary: {self.summary}")
        if self.recommendation:
            lines.append(f"Recommendation: {self.recommendation}")
        if self.options and self.kind is not NoticeKind.EXPIRED:
            lines.append(f"Options: {', '.join(self.options)}")
        lines.append(f"Open it in the inbox: {self.link}")
        return "\n".join(lines)


class NoticeOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    notice_id: str
    slack: str  # sent | skipped (not configured) | failed: <reason>
    email: str
