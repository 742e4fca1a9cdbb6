"""Webhook tests: a real HTTP endpoint on 127.0.0.1 and a tiny run that notifies it.

`Endpoint` answers POSTs from a script of `Answer`s (status, headers, a delay to
provoke a client timeout) and records what it was sent. `Notifier` is the
smallest run that calls `send_webhook` and ends at once, so a test can watch a
delivery outlive the run that asked for it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import threading
    import time
    import uuid
    from collections.abc import AsyncIterator, Iterator
    from contextlib import asynccontextmanager, contextmanager
    from dataclasses import dataclass, field
    from datetime import UTC, datetime
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from typing import Any

    import psycopg
    from psycopg_pool import AsyncConnectionPool
    from pydantic import BaseModel, ConfigDict, SecretStr
    from temporalio.client import Client
    from temporalio.worker import Worker

    from activities.records import EventSink
    from activities.webhooks import WebhookActivities
    from boomerang.models.events import EventKind, RunEvent
    from boomerang.models.webhooks import DeliveryPolicy
    from boomerang.store.deliveries import DeliveryStore
    from boomerang.store.endpoints import EndpointStore
    from boomerang.webhooks.urls import WebhookUrlPolicy
    from tests.http_server import serving
    from workflows.webhooks import DeliverWebhook, send_webhook

SECRET = SecretStr("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
FAST = DeliveryPolicy(
    initial_interval=timedelta(milliseconds=200),
    max_interval=timedelta(seconds=1),
    give_up_after=timedelta(seconds=30),
    request_timeout=timedelta(seconds=2),
)
Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
# Test endpoints listen on loopback; production's policy refuses it, so tests allow it by name.
LOOPBACK = WebhookUrlPolicy.loopback()


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


class Endpoint:
    """A webhook receiver: answers from `script` in order, then with `default`."""

    def __init__(self, script: list[Answer] | None = None, *, default: Answer | None = None) -> None:
        self.script = list(script or [])
        self.default = default or Answer(200)
        self.received: list[Received] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                with endpoint._lock:
                    endpoint.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                    )
                    answer = endpoint.script.pop(0) if endpoint.script else endpoint.default
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                try:
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting: that was the point

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/boomerang?token=s3cr3t-query"

    @contextmanager
    def running(self) -> Iterator[Endpoint]:
        with serving(self.httpd):
            yield self


class NotifyInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant: str
    url: str
    policy: DeliveryPolicy
    kind: EventKind = EventKind.TASK_COMPLETED
    # How many times the run asks for the same event to be sent.
    repeats: int = 1


@workflow.defn(name="WebhookTestNotifier")
class Notifier:
    """Emits one event, asks for it to be sent, and ends without waiting for delivery."""

    @workflow.run
    async def run(self, inp: NotifyInput) -> str:
        run_id = workflow.info().workflow_id
        event = RunEvent(
            event_key=f"{run_id}/00001/{inp.kind.value}",
            run_id=run_id,
            tenant=inp.tenant,
            kind=inp.kind,
            occurred_at=workflow.now(),
            task_type="data_analysis",
            boomer_ang_id="Crunch_Ang",
            message="Crunch_Ang completed the task",
            details={"gpu_type": "A10G"},
        )
        for _ in range(inp.repeats):
            await send_webhook(event, url=inp.url, payload={"extra": "yes"}, policy=inp.policy)
        return event.event_key


def run_id() -> str:
    return f"whk-test-{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def webhook_worker(
    client: Client,
    *,
    pool: Pool,
    events: EventSink,
    secret: SecretStr | None = SECRET,
    url_policy: WebhookUrlPolicy = LOOPBACK,
    **extra: Any,
) -> AsyncIterator[str]:
    """A worker for `Notifier` + `DeliverWebhook` on a fresh queue; yields the queue.

    The endpoints here listen on 127.0.0.1, which production's policy refuses: the
    tests allow loopback explicitly. `extra` goes to `WebhookActivities` (resolver, http).
    """
    task_queue = f"tq-{uuid.uuid4().hex}"
    acts = WebhookActivities(
        deliveries=DeliveryStore(pool),
        events=events,
        secret=secret,
        url_policy=url_policy,
        endpoints=EndpointStore(pool),
        **extra,
    )
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[Notifier, DeliverWebhook],
        activities=acts.activities,
        graceful_shutdown_timeout=timedelta(seconds=2),
    ):
        yield task_queue


def now() -> datetime:
    return datetime.now(UTC)
