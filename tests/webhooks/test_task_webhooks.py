"""A `BoomerAngTask` with a webhook URL notifies it, signed and customer-safe, and never waits on it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import standardwebhooks
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.dispatch import DispatchActivities, Dispatcher
from activities.local_backend import LocalBackend
from activities.records import EventSink, RecordActivities
from activities.tasks import TaskActivities
from activities.webhooks import WebhookActivities
from boomerang.client import BoomerangClient
from boomerang.models.tasks import TaskInput
from boomerang.pricing import load_price_table
from boomerang.store.deliveries import DeliveryStore
from boomerang.store.queries import Pool
from tests.helpers import wait_until
from tests.webhooks import LOOPBACK, SECRET, Answer, Endpoint
from workflows.task import BoomerAngTask
from workflows.webhooks import DeliverWebhook


async def test_a_task_notifies_its_webhook_with_the_charter_view_only(
    dev_env: WorkflowEnvironment, backend: LocalBackend, store_pool: Pool, event_store: EventSink
) -> None:
    prices = load_price_table(env={})
    task_queue = f"tq-{uuid.uuid4().hex}"
    hooks = WebhookActivities(
        deliveries=DeliveryStore(store_pool), events=event_store, secret=SECRET, url_policy=LOOPBACK
    )
    endpoint = Endpoint([Answer(503), Answer(200)])
    with endpoint.running():
        async with Worker(
            dev_env.client,
            task_queue=task_queue,
            workflows=[BoomerAngTask, DeliverWebhook],
            activities=[
                DispatchActivities(Dispatcher(backend, event_store, prices, backend.registry)).dispatch,
                TaskActivities(prices, backend.registry).plan_task,
                RecordActivities(event_store).record_events,
                *hooks.activities,
            ],
            graceful_shutdown_timeout=timedelta(seconds=2),
        ):
            client = BoomerangClient(dev_env.client, task_queue=task_queue, webhook_policy=LOOPBACK)
            inp = TaskInput.model_validate(
                {
                    "tenant": "acme",
                    "task_type": "data_analysis",
                    "payload": {"columns": {"x": [1, 2, 3, 4], "y": [2, 4, 6, 8]}},
                    "webhook_url": endpoint.url,
                }
            )
            task_id = await client.start_task(inp)
            outcome = await client.task_result(task_id)  # returns while the webhook may still retry
            assert outcome.status == "completed"
            await wait_until(lambda: _delivered(endpoint), what="the task_completed webhook", timeout_s=30)

    received = endpoint.received[-1]
    body = standardwebhooks.Webhook(SECRET.get_secret_value()).verify(received.body, received.headers)
    assert body["type"] == "task_completed"
    assert (body["data"]["run_id"], body["data"]["boomer_ang_id"]) == (task_id, "Crunch_Ang")
    raw = received.body.decode().lower()
    for leak in ("cost", "provider", "model_name", "gpu_type", "traceback"):
        assert leak not in raw


async def _delivered(endpoint: Endpoint) -> bool | None:
    return True if len(endpoint.received) >= 2 else None
