"""Delivery against a real local endpoint: retries, timeouts, 410, Retry-After, dead letters.

Real HTTP timing on the dev server; hours of backoff on the time-skipping server.
Every attempt must show in `webhook_deliveries` and in the Ledger, and the run
that asked for the notification must end regardless of the endpoint.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from temporalio.client import WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.records import EventSink
from boomerang.binaries import temporal_test_server
from boomerang.models.events import EventKind, RunEvent
from boomerang.models.webhooks import DeliveryOutcome, DeliveryPolicy, WebhookDelivery
from boomerang.store.deliveries import DeliveryStore
from boomerang.store.queries import Pool, charter_for_run, ledger_for_run
from tests.helpers import wait_until
from tests.webhooks import FAST, SECRET, Answer, Endpoint, Notifier, NotifyInput, run_id, webhook_worker
from workflows.webhooks import DeliverWebhook, delivery_workflow_id


async def _notify(
    env: WorkflowEnvironment, task_queue: str, url: str, *, policy: DeliveryPolicy = FAST, repeats: int = 1
) -> tuple[str, str]:
    """Run a `Notifier` to its end; returns (run id, webhook id)."""
    rid = run_id()
    webhook_id = await env.client.execute_workflow(
        Notifier.run,
        NotifyInput(tenant="acme", url=url, policy=policy, repeats=repeats),
        id=rid,
        task_queue=task_queue,
    )
    return rid, webhook_id


async def _outcome(env: WorkflowEnvironment, webhook_id: str) -> DeliveryOutcome:
    handle = env.client.get_workflow_handle(delivery_workflow_id(webhook_id), result_type=DeliveryOutcome)
    return await handle.result()


async def test_retries_until_accepted_with_one_stable_id_and_every_attempt_recorded(
    dev_env: WorkflowEnvironment, store_pool: Pool, event_store: EventSink
) -> None:
    endpoint = Endpoint([Answer(500), Answer(502), Answer(200)])
    with endpoint.running():
        async with webhook_worker(dev_env.client, pool=store_pool, events=event_store) as tq:
            rid, webhook_id = await _notify(dev_env, tq, endpoint.url)
            outcome = await _outcome(dev_env, webhook_id)

    assert (outcome.status, outcome.attempts, outcome.status_code) == ("delivered", 3, 200)
    # The same id and body on every attempt, each freshly signed and verifiable by a standard receiver.
    assert [r.headers["webhook-id"] for r in endpoint.received] == [webhook_id] * 3
    assert len({r.body for r in endpoint.received}) == 1
    receiver = standardwebhooks.Webhook(SECRET.get_secret_value())
    payloads = [receiver.verify(r.body, r.headers) for r in endpoint.received]
    body = payloads[0]
    assert body["type"] == "task_completed"
    assert body["data"]["run_id"] == rid and body["data"]["extra"] == "yes"
    assert "A10G" not in endpoint.received[0].body.decode()  # Ledger-only details never leave

    attempts = await DeliveryStore(store_pool).attempts(webhook_id=webhook_id)
    assert [(a.attempt, a.status, a.status_code) for a in attempts] == [
        (1, "retrying", 500),
        (2, "retrying", 502),
        (3, "delivered", 200),
    ]
    assert all("s3cr3t" not in a.url and a.url.endswith("/hooks/boomerang") for a in attempts)

    ledger = await ledger_for_run(store_pool, rid)
    assert [(e.kind, e.status, e.attempt) for e in ledger.entries] == [
        ("webhook_failed", "retrying", 1),
        ("webhook_failed", "retrying", 2),
        ("webhook_delivered", "delivered", 3),
    ]
    charter = await charter_for_run(store_pool, rid, "acme")
    assert [c.event for c in charter] == ["webhook_failed", "webhook_failed", "webhook_delivered"]
    assert all("500" not in c.message and "hooks" not in c.message for c in charter)


async def test_a_request_that_times_out_is_retried(
    dev_env: WorkflowEnvironment, store_pool: Pool, event_store: EventSink
) -> None:
    policy = FAST.model_copy(update={"request_timeout": timedelta(milliseconds=500)})
    endpoint = Endpoint([Answer(200, delay_s=3), Answer(204)])
    with endpoint.running():
        async with webhook_worker(dev_env.client, pool=store_pool, events=event_store) as tq:
            _, webhook_id = await _notify(dev_env, tq, endpoint.url, policy=policy)
            outcome = await _outcome(dev_env, webhook_id)

    assert (outcome.status, outcome.attempts, outcome.status_code) == ("delivered", 2, 204)
    attempts = await DeliveryStore(store_pool).attempts(webhook_id=webhook_id)
    assert [(a.status, a.status_code) for a in attempts] == [("retrying", None), ("delivered", 204)]
    assert attempts[0].error == "no answer within 0.5s"


async def test_gone_disables_at_once_and_is_dead_lettered(
    dev_env: WorkflowEnvironment, store_pool: Pool, event_store: EventSink
) -> None:
    endpoint = Endpoint(default=Answer(410))
    with endpoint.running():
        async with webhook_worker(dev_env.client, pool=store_pool, events=event_store) as tq:
            rid, webhook_id = await _notify(dev_env, tq, endpoint.url)
            outcome = await _outcome(dev_env, webhook_id)

    assert (outcome.status, outcome.attempts) == ("dead_lettered", 1)
    assert outcome.reason == "endpoint disabled (410 Gone)"
    assert len(endpoint.received) == 1
    [letter] = await DeliveryStore(store_pool).dead_letters(run_id=rid)
    assert (letter.webhook_id, letter.attempts, letter.last_status_code) == (webhook_id, 1, 410)
    assert letter.reason == outcome.reason
    assert isinstance(letter.body, dict) and letter.body["type"] == "task_completed"
    ledger = await ledger_for_run(store_pool, rid)
    assert [(e.kind, e.status) for e in ledger.entries] == [
        ("webhook_failed", "disabled"),
        ("webhook_failed", "dead_lettered"),
    ]


async def test_429_and_503_wait_as_long_as_retry_after_says(
    dev_env: WorkflowEnvironment, store_pool: Pool, event_store: EventSink
) -> None:
    policy = FAST.model_copy(
        update={"initial_interval": timedelta(milliseconds=50), "max_interval": timedelta(seconds=10)}
    )
    endpoint = Endpoint([Answer(429, {"Retry-After": "2"}), Answer(503, {"Retry-After": "1"}), Answer(200)])
    with endpoint.running():
        async with webhook_worker(dev_env.client, pool=store_pool, events=event_store) as tq:
            rid, webhook_id = await _notify(dev_env, tq, endpoint.url, policy=policy)
            outcome = await _outcome(dev_env, webhook_id)

    assert (outcome.status, outcome.attempts) == ("delivered", 3)
    first, second, third = (r.at for r in endpoint.received)
    # Lower bounds only: the receiver asked for at least this long; later is allowed.
    assert second - first >= 1.9
    assert third - second >= 0.9
    async with store_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT details->>'retry_in_s' FROM ledger WHERE run_id = %s AND kind = %s ORDER BY seq",
            (rid, EventKind.WEBHOOK_FAILED.value),
        )
        assert [float(r[0]) for r in await cur.fetchall()] == [2.0, 1.0]


async def test_the_run_ends_while_its_notification_is_still_retrying_and_sends_it_once(
    dev_env: WorkflowEnvironment, store_pool: Pool, event_store: EventSink
) -> None:
    endpoint = Endpoint(default=Answer(503))
    policy = FAST.model_copy(update={"give_up_after": timedelta(hours=1)})
    with endpoint.running():
        async with webhook_worker(dev_env.client, pool=store_pool, events=event_store) as tq:
            # The run asks twice for the same event: one delivery workflow, not two.
            rid, webhook_id = await _notify(dev_env, tq, endpoint.url, policy=policy, repeats=2)
            parent = await dev_env.client.get_workflow_handle(rid).describe()
            assert parent.status == WorkflowExecutionStatus.COMPLETED

            child = dev_env.client.get_workflow_handle(delivery_workflow_id(webhook_id))
            await wait_until(lambda: _at_least(endpoint, 2), what="two delivery attempts after the run ended")
            assert (await child.describe()).status == WorkflowExecutionStatus.RUNNING
            await child.terminate(reason="test done")

    assert {r.headers["webhook-id"] for r in endpoint.received} == {webhook_id}
    listed = [
        w.id
        async for w in dev_env.client.list_workflows(f"WorkflowId = '{delivery_workflow_id(webhook_id)}'")
    ]
    assert len(listed) <= 1  # visibility may lag; never two executions


def _event(rid: str, key: str) -> RunEvent:
    return RunEvent(
        event_key=key, run_id=rid, tenant="acme", kind=EventKind.TASK_COMPLETED, occurred_at=datetime.now(UTC)
    )


async def _at_least(endpoint: Endpoint, n: int) -> bool | None:
    return True if len(endpoint.received) >= n else None


async def test_without_a_secret_nothing_is_sent_and_the_reason_is_dead_lettered(
    dev_env: WorkflowEnvironment, store_pool: Pool, event_store: EventSink
) -> None:
    endpoint = Endpoint()
    with endpoint.running():
        async with webhook_worker(dev_env.client, pool=store_pool, events=event_store, secret=None) as tq:
            rid, webhook_id = await _notify(dev_env, tq, endpoint.url)
            outcome = await _outcome(dev_env, webhook_id)

    assert outcome.status == "dead_lettered" and "BOOMERANG_WEBHOOK_SECRET" in outcome.reason
    assert endpoint.received == []
    [letter] = await DeliveryStore(store_pool).dead_letters(run_id=rid)
    assert letter.attempts == 0


@pytest.fixture
async def own_clock() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test's own: a day of retries must not depend on
    what runs other tests left on the shared one (their timers hold its clock)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server()), data_converter=pydantic_data_converter
    )
    yield env
    await env.shutdown()


async def test_hours_of_backoff_then_a_dead_letter_on_the_time_skipping_server(
    own_clock: WorkflowEnvironment, store_pool: Pool, event_store: EventSink
) -> None:
    skip_env = own_clock
    """The default policy: 5 s doubling to 1 h between attempts, giving up after 24 h."""
    endpoint = Endpoint(default=Answer(503))
    with endpoint.running():
        async with webhook_worker(skip_env.client, pool=store_pool, events=event_store) as tq:
            rid = run_id()
            webhook_id = f"{rid}/00001/task_completed"
            delivery = WebhookDelivery.model_validate(
                {"webhook_id": webhook_id, "url": endpoint.url, "event": _event(rid, webhook_id)}
            )
            # Started from the test's client, whose handles let the server skip time while awaited.
            handle = await skip_env.client.start_workflow(
                DeliverWebhook.run, delivery, id=delivery_workflow_id(webhook_id), task_queue=tq
            )
            outcome = await handle.result()

    assert outcome.status == "dead_lettered"
    attempts = await DeliveryStore(store_pool).attempts(webhook_id=webhook_id)
    # 5 s x 2^n with up to 30 % jitter reaches the 1 h cap after ~10 tries; 24 h allows ~30.
    assert 20 <= len(attempts) == len(endpoint.received) <= 45
    assert all(a.status == "retrying" and a.status_code == 503 for a in attempts)
    [letter] = await DeliveryStore(store_pool).dead_letters(run_id=rid)
    assert letter.attempts == len(attempts) and letter.last_status_code == 503
    ledger = await ledger_for_run(store_pool, rid)
    assert [e.kind for e in ledger.entries].count("webhook_failed") == len(attempts) + 1
    delays = [json.loads(r.body)["timestamp"] for r in endpoint.received]
    assert len(set(delays)) == 1  # the event's own time, not the attempt's: the body never changes
