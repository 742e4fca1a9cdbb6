"""What crosses the workflow/activity line for webhooks, and what a receiver gets.

Outgoing: the `DeliverWebhook` workflow takes a `WebhookDelivery` (the event, the
endpoint, a retry `DeliveryPolicy`); its activity sends `webhook_body(...)`, built
from the event's Charter view only, so a cost, provider or model has no way out.
Incoming: a compute function reports completion with a signed `ComputeCallback`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, JsonValue

from boomerang.models.events import RunEvent
from boomerang.store.charter import charter_row


class DeliveryPolicy(BaseModel):
    """How hard to try: exponential backoff with jitter, over hours, then a dead letter."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    initial_interval: timedelta = Field(default=timedelta(seconds=5), gt=timedelta(0))
    backoff: float = Field(default=2.0, ge=1.0, le=10.0)
    max_interval: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))
    # The whole schedule: after this, the delivery is dead-lettered.
    give_up_after: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))
    request_timeout: timedelta = Field(default=timedelta(seconds=10), gt=timedelta(0))
    # Each delay is drawn from [delay * (1 - jitter), delay], so endpoints that come
    # back up are not hit by every waiting delivery in the same second.
    jitter: float = Field(default=0.3, ge=0.0, le=1.0)

    def delay(self, attempt: int, draw: float) -> timedelta:
        """Wait before retry after `attempt` (1-based); `draw` in [0, 1) spreads it."""
        base = self.initial_interval.total_seconds() * self.backoff ** min(attempt - 1, 64)
        capped = min(base, self.max_interval.total_seconds())
        return timedelta(seconds=capped * (1 - self.jitter * draw))


class WebhookDelivery(BaseModel):
    """Input of `DeliverWebhook`: one event to one endpoint; `webhook_id` never changes."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    webhook_id: str = Field(min_length=1, max_length=512)
    url: HttpUrl
    event: RunEvent
    # Event-specific, customer-safe extras (e.g. a checkpoint's options and recommendation).
    data: dict[str, JsonValue] = Field(default_factory=dict)
    policy: DeliveryPolicy = DeliveryPolicy()


DeliveryStatus = Literal["delivered", "retrying", "disabled", "failed"]


class AttemptResult(BaseModel):
    """What the activity returns when the endpoint answered 2xx."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    status_code: int


class DeadLetterInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    delivery: WebhookDelivery
    reason: str = Field(max_length=2000)


class DeliveryOutcome(BaseModel):
    """Result of `DeliverWebhook`."""

    model_config = ConfigDict(frozen=True)

    webhook_id: str
    status: Literal["delivered", "dead_lettered"]
    attempts: int
    status_code: int | None = None
    reason: str = ""


class WebhookBody(BaseModel):
    """The JSON a receiver gets: `type` is the event kind, `data` its Charter view plus extras."""

    model_config = ConfigDict(frozen=True)

    type: str
    timestamp: datetime
    data: dict[str, JsonValue]


def webhook_body(event: RunEvent, extras: dict[str, JsonValue]) -> bytes:
    """The exact bytes to sign and send: the same on every retry of the same event.

    Built from `charter_row`, the allow-list the Charter itself uses, so what a
    customer's endpoint receives is never more than what their Charter shows.
    """
    view = charter_row(event).model_dump(mode="json")
    view.pop("event", None)  # it is the body's `type`
    body = WebhookBody(type=event.kind.value, timestamp=event.occurred_at, data={**extras, **view})
    return json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


class ComputeCallback(BaseModel):
    """A signed completion report from a compute function (`POST /webhooks/modal/task-complete`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    task_id: str = Field(min_length=1, max_length=400, description="The BoomerAngTask workflow id.")
    status: Literal["completed", "failed"]
    result: dict[str, JsonValue] = Field(default_factory=dict)
    execution_time_s: float | None = Field(default=None, ge=0)
    error: str | None = Field(default=None, max_length=10_000)


class CallbackRecord(BaseModel):
    """A callback as the task workflow kept it (one per `webhook_id`)."""

    model_config = ConfigDict(frozen=True)

    webhook_id: str
    received_at: datetime
    callback: ComputeCallback
