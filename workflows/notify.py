"""`NotifyApprovers`: one notice to Slack and e-mail, retried for hours, never awaited by the run.

Like `DeliverWebhook`: `send_notice` starts it as an abandoned child whose id is the
event key, and returns once it has started.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotifyActivities
    from boomerang.models.notify import ApprovalNotice, NoticeOutcome

NOTIFY_WORKFLOW = "NotifyApprovers"
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=10))


@workflow.defn(name=NOTIFY_WORKFLOW)
class NotifyApprovers:
    @workflow.run
    async def run(self, notice: ApprovalNotice) -> NoticeOutcome:
        slack, email = await asyncio.gather(
            self._send(NotifyActivities.notify_slack, notice),
            self._send(NotifyActivities.notify_email, notice),
        )
        return NoticeOutcome(notice_id=notice.notice_id, slack=slack, email=email)

    async def _send(self, method: object, notice: ApprovalNotice) -> str:
        try:
            result: str = await workflow.execute_activity_method(
                method,  # type: ignore[call-overload]  # one of NotifyActivities' two channels
                notice,
                schedule_to_close_timeout=timedelta(hours=6),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=_RETRY,
            )
        except ActivityError as exc:
            cause = exc.cause
            return f"failed: {cause if cause is not None else exc}"[:500]
        return result


async def send_notice(notice: ApprovalNotice) -> None:
    """Start notifying people of `notice` and return; call from workflow code only."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await workflow.start_child_workflow(
            NotifyApprovers.run,
            notice,
            id=f"notify:{notice.notice_id}",
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            cancellation_type=workflow.ChildWorkflowCancellationType.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Notify · {notice.kind.value} · {notice.checkpoint} · {notice.run_id}",
        )
