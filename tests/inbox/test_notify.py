"""Notices when a checkpoint opens: Slack-compatible JSON and e-mail over SMTP, both to servers
this test starts on 127.0.0.1 (aiosmtpd, an http.server), from a real run on a real worker."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.notify import NotifyActivities, SmtpConfig
from boomerang.client import BoomerangClient
from boomerang.models.notify import inbox_link
from boomerang.models.pipeline import PipelineInput
from boomerang.store.costs import LedgerCosts
from boomerang.store.queries import Pool
from boomerang.store.recorder import EventStore
from tests.helpers import BRIEF, wait_for_checkpoint, wait_until
from tests.http_server import serving
from worker import build_worker

FIRST = "approve_founders_brief"
INBOX = "http://127.0.0.1:8787"


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[_Mailbox, int]]:
    box = _Mailbox()
    with socket.socket() as probe:  # aiosmtpd's readiness check needs the real port up front
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def slack() -> Iterator[tuple[list[dict[str, Any]], str]]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    with serving(httpd):
        yield received, f"http://127.0.0.1:{httpd.server_address[1]}/services/T000/B000/x"


async def test_an_opened_checkpoint_reaches_slack_and_email_with_its_inbox_link(
    dev_env: WorkflowEnvironment,
    backend: LocalBackend,
    store_pool: Pool,
    mailbox: tuple[_Mailbox, int],
    slack: tuple[list[dict[str, Any]], str],
) -> None:
    (box, port), (posts, slack_url) = mailbox, slack
    notify = NotifyActivities(
        slack_url=slack_url,
        smtp=SmtpConfig(host="127.0.0.1", port=port, to=("founder@example.test",), starttls=False),
    )
    queue = f"tq-{uuid.uuid4().hex}"
    events = EventStore(store_pool)
    worker = build_worker(dev_env.client, task_queue=queue, backend=backend, events=events,
                          costs=LedgerCosts(store_pool), notify=notify)  # fmt: skip
    async with worker:
        client = BoomerangClient(dev_env.client, task_queue=queue)
        tenant = f"acme-{uuid.uuid4().hex[:6]}"
        run_id = await client.start_pipeline(
            PipelineInput(tenant=tenant, project_id="clinic", brief=BRIEF, inbox_url=INBOX)
        )
        await wait_for_checkpoint(client, run_id, FIRST)
        link = inbox_link(INBOX, run_id, FIRST)

        [mail] = await wait_until(lambda: _some(box.messages), what="the e-mail notice")
        assert mail["To"] == "founder@example.test" and "waits for a decision" in mail["Subject"]
        body = mail.get_payload(decode=True)
        assert isinstance(body, bytes) and link in body.decode() and FIRST in body.decode()

        [post] = await wait_until(lambda: _some(posts), what="the Slack notice")
        assert link in post["text"]
        assert post["blocks"][-1]["elements"][0]["url"] == link


async def _some(items: list[Any]) -> list[Any] | None:
    return list(items) if items else None
