"""Webhook URLs to internal addresses are refused when given and again when delivered.

Traffic goes to loopback only: refusals are checked at validation, and at delivery
through a resolver the test controls (a name mapped to a private address), with
an HTTP transport that counts connection attempts (it must count none).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import httpx
import pytest
import standardwebhooks
from temporalio.testing import WorkflowEnvironment

from activities.records import EventSink
from boomerang.admission import InputRefused
from boomerang.api import create_app
from boomerang.client import BoomerangClient
from boomerang.models.pipeline import PipelineInput
from boomerang.models.tasks import TaskInput
from boomerang.models.webhooks import DeliveryOutcome
from boomerang.settings import Settings
from boomerang.store.deliveries import DeliveryStore
from boomerang.store.endpoints import register_endpoint, rotate_secret
from boomerang.store.queries import Pool
from boomerang.store.tokens import ApiRole
from boomerang.webhooks.urls import WebhookUrlPolicy, WebhookUrlRefused, check_webhook_url
from tests.api import make_token
from tests.helpers import BRIEF
from tests.webhooks import FAST, SECRET, Endpoint, Notifier, NotifyInput, run_id, webhook_worker
from workflows.webhooks import delivery_workflow_id

STRICT = WebhookUrlPolicy()
HTTP_OK = WebhookUrlPolicy(require_https=False)  # still refuses internal addresses

INTERNAL = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://[::1]/hook",
    "http://0.0.0.0/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one integer
    "http://0x7f000001/hook",  # as hex
    "http://0177.0.0.1/hook",  # as octal
    "http://127.1/hook",  # short form
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/hook",  # 169.254.169.254, mapped
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://[::]/hook",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused_when_given(url: str) -> None:
    with pytest.raises(WebhookUrlRefused, match=r"webhook_url: .* webhooks go to public addresses only"):
        check_webhook_url(url, HTTP_OK)


def test_https_is_required_and_public_names_pass() -> None:
    with pytest.raises(WebhookUrlRefused, match="must use https"):
        check_webhook_url("http://hooks.example.com/x", STRICT)
    assert check_webhook_url("https://hooks.example.com/x", STRICT).host == "hooks.example.com"
    assert check_webhook_url("https://93.184.216.34/x", STRICT).host == "93.184.216.34"
    with pytest.raises(WebhookUrlRefused, match="http"):
        check_webhook_url("ftp://hooks.example.com/x", STRICT)


def test_the_allow_list_is_explicit() -> None:
    assert check_webhook_url("http://127.0.0.1:9/x", WebhookUrlPolicy.loopback()).port == 9
    networks = WebhookUrlPolicy(allow_hosts=("10.0.0.0/8",), require_https=False)
    check_webhook_url("http://10.9.8.7/x", networks)
    with pytest.raises(WebhookUrlRefused):
        check_webhook_url("http://192.168.0.1/x", networks)


async def test_the_client_refuses_before_anything_starts(dev_env: WorkflowEnvironment) -> None:
    client = BoomerangClient(dev_env.client, task_queue=f"tq-nobody-{uuid.uuid4().hex}")
    rid = f"vp-guard-{uuid.uuid4().hex[:8]}"
    inp = PipelineInput(tenant="acme", project_id="p", brief=BRIEF, webhook_url="http://169.254.169.254/x")
    with pytest.raises(InputRefused, match="link-local") as refused:
        await client.start_pipeline(inp, run_id=rid)
    assert refused.value.field == "webhook_url"
    task = TaskInput.model_validate(
        {"tenant": "acme", "task_type": "research", "webhook_url": "http://[::1]/"}
    )
    with pytest.raises(InputRefused, match="loopback"):
        await client.start_task(task)
    started = [w.id async for w in dev_env.client.list_workflows(f"WorkflowId = '{rid}'")]
    assert started == []


async def test_kickoff_answers_422_naming_the_field(dev_env: WorkflowEnvironment, store_pool: Pool) -> None:
    strict = BoomerangClient(dev_env.client, task_queue=f"tq-nobody-{uuid.uuid4().hex}")
    app = create_app(client=strict, pool=store_pool, settings=Settings(), webhook_secret=SECRET)
    token = await make_token(store_pool, f"acme-{uuid.uuid4().hex[:8]}", ApiRole.APPROVER)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
        for url in ("http://127.0.0.1:8080/x", "http://2130706433/", "https://[::ffff:10.0.0.1]/"):
            response = await http.post(
                "/kickoff",
                json={"project_id": "p", "brief": BRIEF, "webhook_url": url},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 422, response.text
            [error] = response.json()["detail"]
            assert error["loc"] == ["body", "webhook_url"] and "public addresses only" in error["msg"]


def test_the_cli_refuses_with_one_line(dev_env: WorkflowEnvironment) -> None:
    env = {
        **os.environ,
        "BOOMERANG_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "BOOMERANG_TEMPORAL_TASK_QUEUE": f"tq-nobody-{uuid.uuid4().hex}",
    }
    env.pop("BOOMERANG_WEBHOOK_ALLOW_HOSTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "boomerang.cli", "pipeline", "start", "--tenant", "acme", "--project-id", "p",
         "--brief", BRIEF, "--webhook-url", "http://192.168.0.10/hook"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("webhook_url: '192.168.0.10' is private address")
    assert done.stdout == ""


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200)


@pytest.mark.parametrize(
    "answers", [["10.0.0.5"], ["93.184.216.34", "169.254.169.254"], ["::ffff:127.0.0.1"]]
)
async def test_a_name_that_resolves_inside_is_never_connected_to(
    dev_env: WorkflowEnvironment, store_pool: Pool, event_store: EventSink, answers: list[str]
) -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers

    transport = CountingTransport()
    async with (
        httpx.AsyncClient(transport=transport) as http,
        webhook_worker(
            dev_env.client,
            pool=store_pool,
            events=event_store,
            url_policy=STRICT,
            resolver=resolver,
            http=http,
        ) as tq,
    ):
        rid = run_id()
        webhook_id = await dev_env.client.execute_workflow(
            Notifier.run,
            NotifyInput(tenant="acme", url="https://hooks.rebind.test/x", policy=FAST),
            id=rid,
            task_queue=tq,
        )
        handle = dev_env.client.get_workflow_handle(
            delivery_workflow_id(webhook_id), result_type=DeliveryOutcome
        )
        outcome = await handle.result()

    assert asked == ["hooks.rebind.test"]
    assert transport.requests == []  # no connection attempted
    assert outcome.status == "dead_lettered" and "public addresses only" in outcome.reason
    [attempt] = await DeliveryStore(store_pool).attempts(webhook_id=webhook_id)
    assert attempt.status == "failed" and attempt.error is not None and "resolved to" in attempt.error


async def test_delivery_connects_to_the_address_it_checked(
    dev_env: WorkflowEnvironment, store_pool: Pool, event_store: EventSink
) -> None:
    """The name is resolved once, by the test's resolver, and the request goes to that address."""

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    endpoint = Endpoint()
    port = endpoint.httpd.server_address[1]
    policy = WebhookUrlPolicy(allow_hosts=("127.0.0.1",), require_https=False)
    with endpoint.running():
        async with webhook_worker(
            dev_env.client, pool=store_pool, events=event_store, url_policy=policy, resolver=resolver
        ) as tq:
            webhook_id = await dev_env.client.execute_workflow(
                Notifier.run,
                NotifyInput(tenant="acme", url=f"http://hooks.pinned.test:{port}/in", policy=FAST),
                id=run_id(),
                task_queue=tq,
            )
            handle = dev_env.client.get_workflow_handle(
                delivery_workflow_id(webhook_id), result_type=DeliveryOutcome
            )
            assert (await handle.result()).status == "delivered"
    [received] = endpoint.received
    assert received.headers["host"] == f"hooks.pinned.test:{port}"


async def test_registered_endpoints_sign_with_their_own_secrets_and_rotate_with_overlap(
    dev_env: WorkflowEnvironment, store_pool: Pool, event_store: EventSink
) -> None:
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    endpoint = Endpoint()
    with endpoint.running():
        url = str(httpx.URL(endpoint.url))
        _, first = await register_endpoint(store_pool, tenant=tenant, url=url)

        async def deliver() -> dict[str, str]:
            async with webhook_worker(dev_env.client, pool=store_pool, events=event_store) as tq:
                webhook_id = await dev_env.client.execute_workflow(
                    Notifier.run, NotifyInput(tenant=tenant, url=url, policy=FAST), id=run_id(), task_queue=tq
                )
                handle = dev_env.client.get_workflow_handle(
                    delivery_workflow_id(webhook_id), result_type=DeliveryOutcome
                )
                assert (await handle.result()).status == "delivered"
            return endpoint.received[-1].headers

        def verifies(secret: str, headers: dict[str, str]) -> bool:
            try:
                standardwebhooks.Webhook(secret).verify(endpoint.received[-1].body, headers)
            except standardwebhooks.WebhookVerificationError:
                return False
            return True

        headers = await deliver()
        assert verifies(first, headers) and not verifies(SECRET.get_secret_value(), headers)

        second = await rotate_secret(store_pool, tenant=tenant, url=url, overlap=timedelta(hours=1))
        headers = await deliver()
        assert len(headers["webhook-signature"].split()) == 2
        assert verifies(first, headers) and verifies(second, headers)

        third = await rotate_secret(store_pool, tenant=tenant, url=url, overlap=timedelta(0))
        headers = await deliver()
        assert len(headers["webhook-signature"].split()) == 1
        assert verifies(third, headers) and not verifies(second, headers) and not verifies(first, headers)
