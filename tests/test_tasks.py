"""BoomerAngTask end to end on the local backend, checked in the Charter and the Ledger."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.client import BoomerangClient
from boomerang.errors import BoomerangError, TaskFailedError
from boomerang.models.events import EventKind
from boomerang.models.tasks import DispatchInput, TaskInput
from boomerang.store.charter import CharterRow
from boomerang.store.costs import cost_report
from boomerang.store.queries import Pool, charter_for_run, ledger_for_run
from tests.compute import ChatServer, Reply, completion
from tests.fixtures.temporal import StartWorker
from worker import build_worker

BLOCKED = {"gpu_cost", "llm_cost", "total_cost", "provider", "model_name", "cost", "traceback"}

SPECIALIST_TASKS = [
    ("code_generation", "Code_Ang", {"prompt": "Write a function that adds two numbers"}),
    ("research", "Scout_Ang", {"topic": "billing software for dental clinics"}),
    ("design", "Paint_Ang", {"brief": "A calm booking page for dental clinics"}),
    (
        "data_analysis",
        "Crunch_Ang",
        {"columns": {"x": [1, 2, 3, 4, 5], "y": [3, 5, 7, 9, 11]}, "target": "y"},
    ),
]


async def _ledger_details(pool: Pool, run_id: str, kind: EventKind) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT details FROM ledger WHERE run_id = %s AND kind = %s ORDER BY seq", (run_id, kind.value)
        )
        return [row[0] for row in await cur.fetchall()]


@pytest.mark.parametrize(("task_type", "specialist", "payload"), SPECIALIST_TASKS)
async def test_each_specialist_end_to_end(
    dev_env: WorkflowEnvironment,
    start_worker: StartWorker,
    store_pool: Pool,
    task_type: str,
    specialist: str,
    payload: dict[str, Any],
) -> None:
    async with start_worker(dev_env) as client:
        task_id = await client.start_task(TaskInput(tenant="acme", task_type=task_type, payload=payload))
        outcome = await client.task_result(task_id)

    assert (outcome.status, outcome.boomer_ang_id, outcome.run_id) == ("completed", specialist, task_id)
    assert outcome.output
    if task_type == "data_analysis":
        regression = outcome.output["regression"]
        assert isinstance(regression, dict)
        coefficients = regression["coefficients"]
        assert isinstance(coefficients, dict)
        assert coefficients["x"] == pytest.approx(2.0)
        assert regression["intercept"] == pytest.approx(1.0)

    # The Charter: what happened, by whom, never what it cost or which provider ran it.
    charter = await charter_for_run(store_pool, task_id, "acme")
    assert [(r.event, r.boomer_ang_id, r.task_type) for r in charter] == [
        ("task_started", specialist, task_type),
        ("task_completed", specialist, task_type),
    ]
    assert BLOCKED.isdisjoint(CharterRow.model_fields)
    assert await charter_for_run(store_pool, task_id, "someone-else") == []

    # The Ledger: the one attempt with its cost, which is the task's cost and the run's total.
    ledger = await ledger_for_run(store_pool, task_id)
    (attempt,) = [e for e in ledger.entries if e.kind == EventKind.COMPUTE_ATTEMPT]
    assert (attempt.status, attempt.attempt, attempt.gpu_type) == ("ok", 1, "A10G")
    assert attempt.total_cost == outcome.cost_usd == ledger.total_cost
    if task_type != "data_analysis":
        assert (attempt.provider, attempt.model_name) == ("offline", "offline-echo")
        assert attempt.input_tokens and attempt.output_tokens


async def test_unknown_task_type_fails_at_once_naming_what_exists(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    async with start_worker(dev_env) as client:
        task_id = await client.start_task(TaskInput(tenant="acme", task_type="astrology"))
        with pytest.raises(
            TaskFailedError, match="no specialist handles task type 'astrology'; known: code_gen"
        ):
            await client.task_result(task_id)
    charter = await charter_for_run(store_pool, task_id, "acme")
    assert [(r.event, r.message) for r in charter] == [("task_failed", "The task could not be started")]


async def test_bad_payload_fails_once_with_a_safe_charter_and_a_detailed_ledger(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    async with start_worker(dev_env) as client:
        task_id = await client.start_task(
            TaskInput(tenant="acme", task_type="research", payload={"subject": "x"})
        )
        with pytest.raises(TaskFailedError, match=r"payload\.topic: Field required"):
            await client.task_result(task_id)

    charter = await charter_for_run(store_pool, task_id, "acme")
    assert [r.event for r in charter] == ["task_started", "task_failed"]
    assert charter[-1].message == "Scout_Ang could not complete the task"
    # A permanent error is not retried: one attempt, costed, with the error kept in the Ledger.
    (attempt,) = await _ledger_details(store_pool, task_id, EventKind.COMPUTE_ATTEMPT)
    assert "payload.topic: Field required" in attempt["error"]
    assert "Traceback" in attempt["traceback"]
    (failed,) = await _ledger_details(store_pool, task_id, EventKind.TASK_FAILED)
    assert "payload.topic" in failed["error"]


async def test_a_task_over_its_budget_is_not_dispatched(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    async with start_worker(dev_env) as client:
        task_id = await client.start_task(
            TaskInput(
                tenant="acme", task_type="design", payload={"brief": "x"}, max_cost_usd=Decimal("0.001")
            )
        )
        # 60 s expected on an A10G at $0.000306/s is $0.01836 of GPU alone.
        with pytest.raises(
            TaskFailedError, match=r"estimated cost \$0\.0[0-9]+ exceeds max_cost_usd \$0\.001"
        ):
            await client.task_result(task_id)
    charter = await charter_for_run(store_pool, task_id, "acme")
    assert [r.event for r in charter] == ["budget_reached"]
    ledger = await ledger_for_run(store_pool, task_id)
    assert [e.kind for e in ledger.entries] == ["budget_reached"]
    assert ledger.entries[0].total_cost is not None and ledger.entries[0].total_cost > Decimal("0.001")


async def test_two_paid_attempts_are_two_ledger_rows_and_one_charter_event(
    dev_env: WorkflowEnvironment, event_store: EventSink, store_pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real chat-completions server that is overloaded for the whole first attempt
    # (the client's own four tries), then answers: Temporal retries the activity.
    overloaded = [Reply(503, {"error": {"message": "overloaded"}}, {"Retry-After": "0"}) for _ in range(4)]
    server = ChatServer([*overloaded, Reply(200, completion("def add(a, b): return a + b"))])
    with server.running():
        monkeypatch.setenv("BOOMERANG_LLM_API_KEY", "sk-test-not-a-secret")
        monkeypatch.setenv("BOOMERANG_LLM_BASE_URL", server.base_url)
        backend = LocalBackend(max_concurrency=1)  # its processes inherit the LLM settings
        task_queue = f"tq-{uuid.uuid4().hex}"
        try:
            async with build_worker(
                dev_env.client, task_queue=task_queue, backend=backend, events=event_store
            ):
                client = BoomerangClient(dev_env.client, task_queue=task_queue)
                task_id = await client.start_task(
                    TaskInput(
                        tenant="acme", task_type="code_generation", payload={"prompt": "add two numbers"}
                    )
                )
                outcome = await client.task_result(task_id)
        finally:
            await backend.aclose()

    assert outcome.status == "completed" and len(server.seen) == 5
    assert server.seen[0].headers["authorization"] == "Bearer sk-test-not-a-secret"
    ledger = await ledger_for_run(store_pool, task_id)
    attempts = [e for e in ledger.entries if e.kind == EventKind.COMPUTE_ATTEMPT]
    assert [(e.attempt, e.status) for e in attempts] == [(1, "failed"), (2, "ok")]
    assert attempts[1].model_name == "gpt-4.1-nano" and attempts[1].provider != "offline"
    assert (attempts[1].input_tokens, attempts[1].output_tokens) == (12, 5)
    # Money spent twice shows twice; the Charter tells one story.
    assert ledger.total_cost == sum((e.total_cost or Decimal(0) for e in attempts), Decimal(0))
    assert ledger.total_cost > outcome.cost_usd
    charter = await charter_for_run(store_pool, task_id, "acme")
    assert [r.event for r in charter] == ["task_started", "task_completed"]
    report = await cost_report(store_pool, task_id)
    assert [(line.boomer_ang_id, line.attempts) for line in report.lines] == [("Code_Ang", 2)]
    assert report.total_cost == ledger.total_cost


async def test_python_client_reads_charter_ledger_cost_and_verifies(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    async with start_worker(dev_env) as client:
        task_id = await client.start_task(
            TaskInput(tenant="acme", task_type="design", payload={"brief": "calm"})
        )
        await client.task_result(task_id)

    records = BoomerangClient(dev_env.client, records=store_pool)
    assert [r.event for r in await records.charter(task_id, tenant="acme")] == [
        "task_started",
        "task_completed",
    ]
    ledger = await records.ledger(task_id)
    cost = await records.cost(task_id)
    assert cost.total_cost == ledger.total_cost and [x.boomer_ang_id for x in cost.lines] == ["Paint_Ang"]
    report = await records.verify_ledger(task_id)
    assert report.ok and report.rows_checked == len(ledger.entries)
    with pytest.raises(BoomerangError, match="no records pool"):
        await BoomerangClient(dev_env.client).ledger(task_id)


async def test_a_task_hands_task_started_to_its_dispatch(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    # task_started goes with the dispatch (which writes it before its attempt row), so the
    # task's workflow tasks run two local activities (plan, the final events), not three.
    _, _, payload = SPECIALIST_TASKS[-1]
    async with start_worker(dev_env) as client:
        inp = TaskInput(tenant="acme", task_type="data_analysis", payload=payload)
        task_id = await client.start_task(inp)
        await client.task_result(task_id)
        history = await client.temporal.get_workflow_handle(task_id).fetch_history()

    first_activity = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    scheduled = next(e for e in history.events if e.event_type == first_activity)
    payloads = scheduled.activity_task_scheduled_event_attributes.input.payloads
    (dispatched,) = pydantic_data_converter.payload_converter.from_payloads(payloads, [DispatchInput])
    assert [e.kind for e in dispatched.events] == [EventKind.TASK_STARTED]
    local = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    assert len(local) == 2
    ledger = await ledger_for_run(store_pool, task_id)
    assert [EventKind(r.kind) for r in ledger.entries] == [
        EventKind.TASK_STARTED, EventKind.COMPUTE_ATTEMPT, EventKind.TASK_COMPLETED,
    ]  # fmt: skip
