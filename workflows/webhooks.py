"""`DeliverWebhook`: one event to one endpoint, retried for hours, then dead-lettered.

A run never waits on its notifications: `send_webhook` starts the delivery as a
child workflow with `ParentClosePolicy.ABANDON` and returns once it has started,
so a slow or dead endpoint cannot block or fail the run, and a delivery still
retrying when the run ends carries on. The child's id is derived from the event
key, so one event is delivered by one workflow however often a run (or a reset
run) asks:

    event = self._events.emit(EventKind.CHECKPOINT_OPENED, ...)
    await send_webhook(event, url=url, payload=checkpoint_data(cp))
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from pydantic import JsonValue, ValidationError

    from activities.webhooks import ENDPOINT_GONE, NOT_CONFIGURED, WebhookActivities
    from boomerang.models.events import RunEvent
    from boomerang.models.pipeline import CheckpointSpec
    from boomerang.models.webhooks import DeadLetterInput, DeliveryOutcome, DeliveryPolicy, WebhookDelivery

WEBHOOK_WORKFLOW = "DeliverWebhook"
_RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


def delivery_workflow_id(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"


@workflow.defn(name=WEBHOOK_WORKFLOW)
class DeliverWebhook:
    @workflow.run
    async def run(self, inp: WebhookDelivery) -> DeliveryOutcome:
        policy = inp.policy
        try:
            result = await workflow.execute_activity_method(
                WebhookActivities.deliver,
                inp,
                schedule_to_close_timeout=policy.give_up_after,
                # The request, plus recording the attempt in Postgres.
                start_to_close_timeout=policy.request_timeout + timedelta(seconds=30),
                # For failures the activity cannot time itself (a lost worker); the
                # activity sets its own jittered delay or the receiver's Retry-After.
                retry_policy=RetryPolicy(
                    initial_interval=policy.initial_interval,
                    backoff_coefficient=policy.backoff,
                    maximum_interval=policy.max_interval,
                    non_retryable_error_types=[ENDPOINT_GONE, NOT_CONFIGURED],
                ),
            )
        except ActivityError as exc:
            reason = _reason(exc)
            attempts = await workflow.execute_activity_method(
                WebhookActivities.dead_letter,
                DeadLetterInput(delivery=inp, reason=reason),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_RECORD_RETRY,
            )
            return DeliveryOutcome(
                webhook_id=inp.webhook_id, status="dead_lettered", attempts=attempts, reason=reason
            )
        return DeliveryOutcome(
            webhook_id=inp.webhook_id,
            status="delivered",
            attempts=result.attempt,
            status_code=result.status_code,
        )


def _reason(exc: ActivityError) -> str:
    """The last real failure under a timeout or retry wrapper, as a sentence."""
    cause: BaseException | None = exc.cause
    messages: list[str] = []
    while isinstance(cause, FailureError):
        messages.append(cause.message)
        if isinstance(cause, ApplicationError):
            break
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.type == ENDPOINT_GONE:
        return "endpoint disabled (410 Gone)"
    text = "; ".join(m for m in messages if m) or str(exc)
    return f"gave up: {text}"[:2000]


def checkpoint_data(
    cp: CheckpointSpec, *, opening: int, context: dict[str, JsonValue] | None = None
) -> dict[str, JsonValue]:
    """What a receiver needs to act on an opened checkpoint (the deadline is in the event).

    `opening` goes back with a decision so it lands on the opening it was made on;
    `context` must be customer-safe (`CheckpointContext.customer_safe()`).
    """
    return {
        "title": cp.title,
        "options": [o.value for o in cp.options],
        "recommendation": cp.recommendation.value if cp.recommendation else None,
        "opening": opening,
        "context": context or {},
    }


async def send_webhook(
    event: RunEvent,
    *,
    url: str,
    payload: dict[str, JsonValue] | None = None,
    policy: DeliveryPolicy | None = None,
) -> None:
    """Start delivering `event` to `url` and return; the run never awaits the delivery.

    Call from workflow code only. A URL that is not http(s) is logged and skipped
    rather than raised: a bad notification address must not fail the run.
    """
    try:
        delivery = WebhookDelivery(
            webhook_id=event.event_key,
            url=url,  # validated into HttpUrl here
            event=event,
            data=payload or {},
            policy=policy or DeliveryPolicy(),
        )
    except ValidationError as exc:
        workflow.logger.warning("webhook for %s skipped: %s", event.event_key, exc)
        return
    # Already started means this event is on its way: one event, one delivery.
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await workflow.start_child_workflow(
            DeliverWebhook.run,
            delivery,
            id=delivery_workflow_id(delivery.webhook_id),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            cancellation_type=workflow.ChildWorkflowCancellationType.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Webhook · {event.kind.value} · {event.run_id}",
        )
