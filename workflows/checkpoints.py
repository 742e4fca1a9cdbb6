"""One checkpoint opening, waited on durably: open, remind, warn, then a decision or expiry.

The wait is `workflow.wait_condition` with a timeout: no compute, no cron, through
any crash. Every step is an event (opened, reminded, decided, expired) and, when
the run has one, a webhook. Workflow code only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from boomerang.models.decisions import CheckpointContext, DecisionRecord, RunStatus
    from boomerang.models.events import EventKind
    from boomerang.models.notify import NoticeKind
    from boomerang.models.pipeline import CheckpointSpec
    from workflows.approvals import ApprovalBook
    from workflows.reporting import RunReporter
    from workflows.webhooks import checkpoint_data

EXPIRY_WARNING = "checkpoint-expiry-warning"


async def await_checkpoint(
    cp: CheckpointSpec,
    context: CheckpointContext,
    *,
    book: ApprovalBook,
    report: RunReporter,
    phase: str | None,
) -> DecisionRecord | None:
    """Open `cp` and wait; the decision, or None when it expired with none."""
    now = workflow.now()
    deadline = now + cp.timeout
    refused = book.open(cp.name, now=now, deadline=deadline, phase=phase, context=context.as_json())
    opening = book.opening(cp.name)
    if refused is not None:
        report.refused(cp.name, refused.reason, via=refused.via)
    opened = report.emit(
        EventKind.CHECKPOINT_OPENED,
        checkpoint=cp.name,
        deadline=deadline,
        message=f"Awaiting a decision: {cp.title}",
        details={"opening": opening, **context.as_json()},
    )
    report.publish(RunStatus.AWAITING_APPROVAL)
    notice = checkpoint_data(cp, opening=opening, context=context.customer_safe())
    await report.notify(opened, notice)
    await report.notice(NoticeKind.OPENED, opened, cp, context.customer_safe())
    if cp.reminder_after is not None and not await _settled_by(book, cp.name, now + cp.reminder_after):
        book.remind(cp.name, workflow.now())
        reminded = report.emit(
            EventKind.CHECKPOINT_REMINDED,
            checkpoint=cp.name,
            deadline=deadline,
            message=f"Reminder: {cp.title} is waiting for a decision",
        )
        await report.notify(reminded, notice)
        await report.notice(NoticeKind.REMINDED, reminded, cp, context.customer_safe())
    warn_at = None if cp.expiry_warning is None else deadline - cp.expiry_warning
    # A timer runs that earlier runs never had: gated, so their histories still replay.
    if (
        warn_at is not None
        and warn_at > workflow.now()
        and workflow.patched(EXPIRY_WARNING)
        and not await _settled_by(book, cp.name, warn_at)
    ):
        expiring = report.emit(
            EventKind.CHECKPOINT_EXPIRING,
            checkpoint=cp.name,
            deadline=deadline,
            message=f"{cp.title} expires soon with no decision",
        )
        await report.notify(expiring, notice)
        await report.notice(NoticeKind.EXPIRING, expiring, cp, context.customer_safe())
    if not await _settled_by(book, cp.name, deadline):
        book.expire(cp.name)
        expired = report.emit(
            EventKind.CHECKPOINT_EXPIRED,
            status="expired",
            checkpoint=cp.name,
            message=f"{cp.title} expired with no decision ({cp.on_expiry.value})",
        )
        report.publish(RunStatus.RUNNING, defer=True)
        await report.notify(expired)
        await report.notice(NoticeKind.EXPIRED, expired, cp, context.customer_safe())
        return None
    record = book.decision_for(cp.name)
    if record is None:  # settled and not expired means decided; never an input error
        raise ApplicationError(f"internal: {cp.name} settled without a decision", non_retryable=True)
    decided = report.emit(
        EventKind.CHECKPOINT_DECIDED,
        checkpoint=cp.name,
        decision=record.decision.value,
        message=f"{cp.title}: {record.decision.value}",
        approver=record.approver,
        details={
            "comment": record.comment,
            "decision_id": record.decision_id,
            "via": record.via,
            "opening": record.opening,
        },
    )
    # Deferred: what the run does next (a checkpoint, a phase, its end) publishes again.
    report.publish(RunStatus.RUNNING, defer=True)
    await report.notify(decided)
    return record


async def _settled_by(book: ApprovalBook, name: str, until: datetime) -> bool:
    """Wait until `name` is decided (True) or `until` passes (False)."""
    remaining = until - workflow.now()
    if remaining <= timedelta(0):
        return book.settled(name)
    try:
        await workflow.wait_condition(lambda: book.settled(name), timeout=remaining)
    except TimeoutError:
        return book.settled(name)
    return True
