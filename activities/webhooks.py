"""Send one signed webhook per activity attempt; record every attempt; dead-letter the rest.

Temporal owns the schedule (the `DeliverWebhook` workflow sets it from a
`DeliveryPolicy`): this activity tries once and says how it went.

- 2xx: delivered.
- 410 Gone: the receiver has switched the endpoint off; no retry (non-retryable).
- 429 / 503 with `Retry-After`: retry no sooner than the receiver asked (capped at
  the policy's max interval), via `ApplicationError(next_retry_delay=...)`.
- anything else (other 4xx/5xx, timeouts, refused connections): retry after the
  policy's exponential delay with jitter, also given as `next_retry_delay`.

Each attempt lands in `webhook_deliveries` and in the Ledger as a
`webhook_delivered` / `webhook_failed` event keyed `<webhook id>/delivery/<attempt>`;
the Charter gets its customer-safe part (the store's allow-list decides). The
`webhook-id` header is the same on every attempt, so receivers can deduplicate.
URLs are recorded and logged without query string or credentials.

Where it goes: the URL is checked again here, at delivery (it may have been given
before the policy changed, or to a client that did not check), its host resolved
and every address checked, and the request sent to the checked address itself
(`Host` and TLS SNI keep the name), so a name that resolves somewhere else a
moment later (DNS rebinding) cannot pass. A refused URL is not retried: it is
recorded, dead-lettered and never connected to.

Signed with the endpoint's own secrets when the URL is a registered endpoint of
the tenant (`boomerang webhooks register`; both secrets during a rotation's
overlap), else with `BOOMERANG_WEBHOOK_SECRET`.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
import structlog
from pydantic import JsonValue, SecretStr
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.records import EventSink
from boomerang.models.events import EventKind, RunEvent
from boomerang.models.webhooks import (
    AttemptResult,
    DeadLetterInput,
    WebhookDelivery,
    webhook_body,
)
from boomerang.store.deliveries import DeadLetter, DeliveryAttempt, DeliveryStore
from boomerang.store.endpoints import EndpointStore
from boomerang.webhooks.signing import WebhookSigner, signed_headers
from boomerang.webhooks.urls import (
    Resolver,
    WebhookUrlPolicy,
    WebhookUrlRefused,
    check_webhook_url,
    resolve_checked,
    system_resolver,
)

log = structlog.get_logger(__name__)

ENDPOINT_GONE = "WebhookEndpointGone"
NOT_CONFIGURED = "WebhookNotConfigured"
DELIVERY_FAILED = "WebhookDeliveryFailed"
URL_REFUSED = "WebhookUrlRefused"
_RESPECTS_RETRY_AFTER = frozenset({429, 503})
_USER_AGENT = "Boomerang-Webhooks/1"
_MAX_KEY = 400


def display_url(url: str) -> str:
    """The URL without credentials, query or fragment: safe for tables and logs."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


def retry_after(value: str | None, *, now: datetime, cap: timedelta) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date, clamped to [0, cap]; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            delay = parsedate_to_datetime(value) - now
        except (TypeError, ValueError, IndexError):
            return None
    return max(timedelta(0), min(delay, cap))


def event_key(webhook_id: str, suffix: str) -> str:
    """A Ledger key for this webhook's bookkeeping; hashed when the id is too long to fit."""
    key = f"{webhook_id}/{suffix}"
    if len(key) <= _MAX_KEY:
        return key
    return f"webhook-{hashlib.sha256(webhook_id.encode()).hexdigest()}/{suffix}"


Outcome = Literal["delivered", "retrying", "disabled", "failed"]


@dataclass(frozen=True)
class _Target:
    """The checked address to connect to, and the name the request still carries."""

    url: httpx.URL
    host: str | None = None
    sni: str | None = None


class WebhookActivities:
    """`deliver_webhook` and `dead_letter_webhook`; without a secret nothing is sent."""

    def __init__(
        self,
        *,
        deliveries: DeliveryStore,
        events: EventSink,
        secret: SecretStr | None,
        http: httpx.AsyncClient | None = None,
        url_policy: WebhookUrlPolicy | None = None,
        endpoints: EndpointStore | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._deliveries = deliveries
        self._events = events
        self._signer = WebhookSigner.from_secret(secret) if secret is not None else None
        self._http = http
        # Production's policy unless told otherwise: https, public addresses only.
        self._policy = url_policy or WebhookUrlPolicy()
        self._endpoints = endpoints
        self._resolve = resolver

    @classmethod
    def from_settings(cls, settings: Any, *, pool: Any, events: EventSink) -> WebhookActivities:
        """The worker's: the settings' secret and URL policy, endpoints registered in `pool`."""
        return cls(
            deliveries=DeliveryStore(pool),
            events=events,
            secret=settings.webhook_secret,
            url_policy=WebhookUrlPolicy.from_settings(settings),
            endpoints=EndpointStore(pool),
        )

    @property
    def activities(self) -> list[Any]:
        """Register these with the worker."""
        return [self.deliver, self.dead_letter]

    @activity.defn(name="deliver_webhook")
    async def deliver(self, inp: WebhookDelivery) -> AttemptResult:
        signers = await self._signers(inp)
        if not signers:
            raise ApplicationError(
                "webhooks cannot be signed: register the endpoint (boomerang webhooks register) or set "
                "BOOMERANG_WEBHOOK_SECRET (whsec_...) on the worker",
                type=NOT_CONFIGURED,
                non_retryable=True,
            )
        attempt = activity.info().attempt
        body = webhook_body(inp.event, inp.data)
        headers = {
            **signed_headers(signers, inp.webhook_id, body),
            "content-type": "application/json",
            "user-agent": _USER_AGENT,
        }
        started = time.monotonic()
        try:
            target = await self._target(str(inp.url))
        except WebhookUrlRefused as exc:
            await self._record(inp, attempt, "failed", code=None, error=str(exc)[:500], ms=0, delay=None)
            raise ApplicationError(str(exc), type=URL_REFUSED, non_retryable=True) from None
        code, error, after = await self._post(inp, body, headers, target)
        duration_ms = int((time.monotonic() - started) * 1000)
        if code is not None and 200 <= code < 300:
            outcome: Outcome = "delivered"
        elif code == 410:
            outcome = "disabled"
        else:
            outcome = "retrying"
        delay = None
        if outcome == "retrying":
            delay = after if after is not None else inp.policy.delay(attempt, random.random())  # noqa: S311
        await self._record(inp, attempt, outcome, code=code, error=error, ms=duration_ms, delay=delay)
        if outcome == "delivered":
            return AttemptResult(attempt=attempt, status_code=code or 200)
        if outcome == "disabled":
            raise ApplicationError(
                "the endpoint answered 410 Gone: it is switched off", attempt, code, type=ENDPOINT_GONE,
                non_retryable=True,
            )  # fmt: skip
        raise ApplicationError(
            f"delivery attempt {attempt} failed: {error}", attempt, code, type=DELIVERY_FAILED,
            next_retry_delay=delay,
        )  # fmt: skip

    async def _signers(self, inp: WebhookDelivery) -> list[WebhookSigner]:
        """The endpoint's own secrets, newest first, when registered; else the global one."""
        if self._endpoints is not None:
            secrets = await self._endpoints.active_secrets(tenant=inp.event.tenant, url=str(inp.url))
            if secrets is not None:
                return [WebhookSigner.from_secret(s) for s in secrets]
        return [self._signer] if self._signer is not None else []

    async def _target(self, url: str) -> _Target:
        """Where to connect: the URL checked, and its host resolved to checked addresses."""
        parsed = check_webhook_url(url, self._policy)
        if self._policy.allows_name(parsed.host):
            return _Target(url=parsed)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        [address, *_] = await resolve_checked(parsed.host, port, self._policy, self._resolve)
        host_header = parsed.netloc.decode("ascii").rpartition("@")[2]
        return _Target(url=parsed.copy_with(host=address), host=host_header, sni=parsed.host)

    async def _post(
        self, inp: WebhookDelivery, body: bytes, headers: dict[str, str], target: _Target
    ) -> tuple[int | None, str | None, timedelta | None]:
        """(status code, error, Retry-After) of one POST; never raises for network trouble."""
        timeout = inp.policy.request_timeout.total_seconds()
        if target.host is not None:
            headers = {**headers, "host": target.host}
        extensions = {"sni_hostname": target.sni} if target.sni is not None else None
        try:
            if self._http is not None:
                response = await self._http.post(
                    target.url, content=body, headers=headers, timeout=timeout, extensions=extensions
                )
            else:
                # No redirects: a 3xx to an internal address would bypass every check above.
                async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
                    response = await http.post(
                        target.url, content=body, headers=headers, timeout=timeout, extensions=extensions
                    )
        except httpx.TimeoutException:
            return None, f"no answer within {timeout:g}s", None
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500], None
        code = response.status_code
        if 200 <= code < 300:
            return code, None, None
        after = None
        if code in _RESPECTS_RETRY_AFTER:
            after = retry_after(
                response.headers.get("retry-after"), now=datetime.now(UTC), cap=inp.policy.max_interval
            )
        return code, f"HTTP {code}: {response.text[:200]}", after

    async def _record(
        self,
        inp: WebhookDelivery,
        attempt: int,
        outcome: Outcome,
        *,
        code: int | None,
        error: str | None,
        ms: int,
        delay: timedelta | None,
    ) -> None:
        event = inp.event
        url = display_url(str(inp.url))
        await self._deliveries.record_attempt(
            DeliveryAttempt(
                webhook_id=inp.webhook_id, run_id=event.run_id, tenant=event.tenant, url=url,
                event=event.kind.value, attempt=attempt, status=outcome, status_code=code, error=error,
                duration_ms=ms,
            )
        )  # fmt: skip
        details: dict[str, JsonValue] = {
            "webhook_id": inp.webhook_id,
            "url": url,
            "status_code": code,
            "error": error,
            "duration_ms": ms,
            "retry_in_s": None if delay is None else round(delay.total_seconds(), 3),
        }
        message = {
            "delivered": f"Notification of {event.kind.value} delivered",
            "retrying": f"Notification of {event.kind.value} not accepted yet; retrying",
            "disabled": f"Notification of {event.kind.value} refused: the endpoint is switched off",
            "failed": f"Notification of {event.kind.value} failed",
        }[outcome]
        await self._events.record(
            self._webhook_event(inp, f"delivery/{attempt:04d}", outcome, message, attempt, details)
        )
        log.info("webhook attempt", webhook_id=inp.webhook_id, url=url, attempt=attempt, outcome=outcome,
                 status_code=code)  # fmt: skip

    @staticmethod
    def _webhook_event(
        inp: WebhookDelivery,
        suffix: str,
        status: str,
        message: str,
        attempt: int,
        details: dict[str, JsonValue],
    ) -> RunEvent:
        event = inp.event
        return RunEvent(
            event_key=event_key(inp.webhook_id, suffix),
            run_id=event.run_id,
            tenant=event.tenant,
            kind=EventKind.WEBHOOK_DELIVERED if status == "delivered" else EventKind.WEBHOOK_FAILED,
            occurred_at=datetime.now(UTC),
            status=status,
            phase=event.phase,
            checkpoint=event.checkpoint,
            boomer_ang_id=event.boomer_ang_id,
            task_type=event.task_type,
            project_id=event.project_id,
            message=message,
            attempt=attempt,
            details=details,
        )

    @activity.defn(name="dead_letter_webhook")
    async def dead_letter(self, inp: DeadLetterInput) -> int:
        """Keep a delivery that gave up, with the attempts it took; returns that count."""
        delivery = inp.delivery
        attempts = await self._deliveries.attempts(webhook_id=delivery.webhook_id)
        last = attempts[-1] if attempts else None
        url = display_url(str(delivery.url))
        await self._deliveries.dead_letter(
            DeadLetter(
                webhook_id=delivery.webhook_id, run_id=delivery.event.run_id, tenant=delivery.event.tenant,
                url=url, event=delivery.event.kind.value, attempts=len(attempts),
                last_status_code=last.status_code if last else None, reason=inp.reason,
                body=json.loads(webhook_body(delivery.event, delivery.data)),
            )
        )  # fmt: skip
        details: dict[str, JsonValue] = {
            "webhook_id": delivery.webhook_id,
            "url": url,
            "reason": inp.reason,
            "attempts": len(attempts),
        }
        message = f"Notification of {delivery.event.kind.value} given up after {len(attempts)} attempt(s)"
        tries = max(len(attempts), 1)
        await self._events.record(
            self._webhook_event(delivery, "dead_letter", "dead_lettered", message, tries, details)
        )
        log.warning("webhook dead-lettered", webhook_id=delivery.webhook_id, url=url, attempts=len(attempts))
        return len(attempts)
