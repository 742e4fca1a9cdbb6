"""`POST /webhooks/modal/task-complete`: signed, fresh, once.

The task (or the pipeline run whose phase runs it) is started on a queue no worker
polls yet, so it is still running when the callbacks arrive; a worker then picks it
up and the `callbacks` query shows what the run kept.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.constants import CALLBACK_SIGNAL, CALLBACKS_QUERY, PIPELINE_WORKFLOW, TASK_WORKFLOW
from boomerang.models.pipeline import PipelineInput
from boomerang.models.tasks import TaskInput, TaskOutcome, phase_task_id
from boomerang.models.webhooks import CallbackRecord
from boomerang.webhooks.signing import WebhookSigner, generate_secret
from tests.api import Api, api_fixture  # noqa: F401  (the `api` fixture)
from tests.helpers import BRIEF
from tests.webhooks import SECRET
from worker import build_worker

PATH = "/webhooks/modal/task-complete"


def _signed(
    body: bytes, webhook_id: str, *, secret: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    signer = WebhookSigner.from_secret(secret or SECRET)
    return {**signer.headers(webhook_id, body, now=at), "content-type": "application/json"}


def _body(task_id: str, **extra: object) -> bytes:
    return json.dumps({"task_id": task_id, "status": "completed", "result": {"ok": True}, **extra}).encode()


async def test_a_callback_reaches_the_task_once_and_forgeries_never(
    api: Api, dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    task_queue = f"tq-{uuid.uuid4().hex}"
    task_id = f"task-cb-{uuid.uuid4().hex[:8]}"
    inp = TaskInput(
        tenant=api.tenant, task_type="data_analysis", payload={"columns": {"x": [1, 2, 3], "y": [2, 4, 6]}}
    )
    handle = await dev_env.client.start_workflow(TASK_WORKFLOW, inp, id=task_id, task_queue=task_queue)
    body = _body(task_id, execution_time_s=1.5)

    first = await api.http.post(PATH, content=body, headers=_signed(body, "cb-1"))
    assert first.status_code == 200 and first.json() == {"status": "accepted", "task_id": task_id}
    replay = await api.http.post(PATH, content=body, headers=_signed(body, "cb-1"))
    assert replay.json()["status"] == "duplicate"
    second = await api.http.post(PATH, content=body, headers=_signed(body, "cb-2"))
    assert second.json()["status"] == "accepted"

    now = datetime.now(UTC)
    forgeries = {
        "wrong secret": (body, _signed(body, "cb-3", secret=generate_secret())),
        "altered body": (_body(task_id, status="failed"), _signed(body, "cb-3")),
        "stale": (body, _signed(body, "cb-3", at=now - timedelta(minutes=6))),
        "future": (body, _signed(body, "cb-3", at=now + timedelta(minutes=6))),
        "unsigned": (body, {"content-type": "application/json"}),
        "bad base64": (body, {**_signed(body, "cb-3"), "webhook-signature": "v1,%%%"}),
    }
    for what, (content, headers) in forgeries.items():
        response = await api.http.post(PATH, content=content, headers=headers)
        assert response.status_code == 401, (what, response.text)

    unknown = _body("task-that-never-was")
    assert (await api.http.post(PATH, content=unknown, headers=_signed(unknown, "cb-4"))).status_code == 404
    malformed = b'{"task_id": 7}'
    assert (
        await api.http.post(PATH, content=malformed, headers=_signed(malformed, "cb-5"))
    ).status_code == 422

    # Even if a claim were lost, the run itself keeps one callback per webhook id.
    duplicate = CallbackRecord.model_validate(
        {"webhook_id": "cb-1", "received_at": now, "callback": json.loads(body)}
    )
    await handle.signal(CALLBACK_SIGNAL, duplicate)

    async with build_worker(dev_env.client, task_queue=task_queue, backend=backend, events=event_store):
        outcome = await dev_env.client.get_workflow_handle(task_id, result_type=TaskOutcome).result()
        kept = await handle.query(CALLBACKS_QUERY, result_type=list[CallbackRecord])
    assert outcome.status == "completed"
    assert [(r.webhook_id, r.callback.execution_time_s) for r in kept] == [("cb-1", 1.5), ("cb-2", 1.5)]

    late = await api.http.post(PATH, content=body, headers=_signed(body, "cb-6"))
    assert late.json()["status"] == "too_late"


async def test_a_callback_of_a_phase_task_reaches_the_run_that_runs_it(
    api: Api, dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    # A phase's specialist task runs inside its pipeline run: the run takes its callbacks.
    task_queue = f"tq-{uuid.uuid4().hex}"
    run_id = f"vp-cb-{uuid.uuid4().hex[:8]}"
    inp = PipelineInput(tenant=api.tenant, project_id="clinic", brief=BRIEF)
    handle = await dev_env.client.start_workflow(PIPELINE_WORKFLOW, inp, id=run_id, task_queue=task_queue)
    task_id = phase_task_id(run_id, 1, "research")
    body = _body(task_id, execution_time_s=2.5)

    first = await api.http.post(PATH, content=body, headers=_signed(body, "cb-p1"))
    assert first.status_code == 200 and first.json() == {"status": "accepted", "task_id": task_id}
    replay = await api.http.post(PATH, content=body, headers=_signed(body, "cb-p1"))
    assert replay.json()["status"] == "duplicate"
    for unknown in (phase_task_id(f"vp-never-{uuid.uuid4().hex[:6]}", 1, "research"), f"{run_id}/other-001"):
        content = _body(unknown)
        response = await api.http.post(PATH, content=content, headers=_signed(content, f"cb-{unknown}"))
        assert response.status_code == 404, (unknown, response.text)

    async with build_worker(dev_env.client, task_queue=task_queue, backend=backend, events=event_store):
        kept = await handle.query(CALLBACKS_QUERY, result_type=list[CallbackRecord])
        await handle.terminate("the test is over")
    assert [(r.webhook_id, r.callback.task_id, r.callback.execution_time_s) for r in kept] == [
        ("cb-p1", task_id, 2.5)
    ]
