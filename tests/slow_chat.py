"""A worker whose specialists' chat API (a loopback server) asks them to come back in a
minute, so a task waits inside compute until it is cancelled."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.client import BoomerangClient
from tests.compute import ChatServer, Reply
from tests.helpers import wait_until
from worker import build_worker


@asynccontextmanager
async def worker_behind_a_slow_chat_api(
    env: WorkflowEnvironment, events: EventSink, monkeypatch: pytest.MonkeyPatch, *, processes: int
) -> AsyncIterator[tuple[BoomerangClient, ChatServer]]:
    server = ChatServer([Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "60"})])
    with server.running():
        monkeypatch.setenv("BOOMERANG_LLM_API_KEY", "sk-test-not-a-secret")
        monkeypatch.setenv("BOOMERANG_LLM_BASE_URL", server.base_url)
        backend = LocalBackend(max_concurrency=processes)  # its processes inherit the LLM settings
        try:
            task_queue = f"tq-{uuid.uuid4().hex}"
            async with build_worker(env.client, task_queue=task_queue, backend=backend, events=events):
                yield BoomerangClient(env.client, task_queue=task_queue), server
        finally:
            await backend.aclose()


async def until_asked(server: ChatServer, *, what: str) -> None:
    """Wait until a specialist has called the chat API (and is waiting to be let back)."""

    async def asked() -> bool | None:
        return True if server.seen else None

    await wait_until(asked, what=what)
