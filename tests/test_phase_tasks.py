"""A phase's specialist tasks run inside the run: their events, failures and cancels are the run's."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.records import EventSink
from boomerang.client import BoomerangClient
from boomerang.models.decisions import RunStatus
from boomerang.models.events import EventKind
from boomerang.models.pipeline import PhaseTask, PipelineInput, PipelineSpec
from boomerang.pipelines import startup_validation_pipeline
from boomerang.store.queries import Pool, charter_for_run
from tests.fixtures.temporal import StartWorker
from tests.helpers import BRIEF
from tests.slow_chat import until_asked, worker_behind_a_slow_chat_api


def _first_phase_runs(task: PhaseTask) -> PipelineSpec:
    spec = startup_validation_pipeline()
    first = spec.phases[0].model_copy(update={"tasks": (task,)})
    return spec.model_copy(update={"phases": (first, *spec.phases[1:])})


async def _children_started(client: BoomerangClient, run_id: str) -> int:
    history = await client.temporal.get_workflow_handle(run_id).fetch_history()
    started = EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    return sum(e.event_type == started for e in history.events)


async def _ledger_details(pool: Pool, run_id: str, kind: EventKind) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT details FROM ledger WHERE run_id = %s AND kind = %s ORDER BY seq", (run_id, kind.value)
        )
        return [r[0] for r in await cur.fetchall()]


async def test_a_failing_phase_task_fails_its_phase_with_the_tasks_own_events(
    dev_env: WorkflowEnvironment, start_worker: StartWorker, store_pool: Pool
) -> None:
    # A payload data_analysis cannot take: the task fails at once, without retries.
    spec = _first_phase_runs(PhaseTask(task_type="data_analysis", payload={"rows": "not a table"}))
    inp = PipelineInput(tenant="acme", project_id="clinic", brief=BRIEF, spec=spec)
    async with start_worker(dev_env) as client:
        run_id = await client.start_pipeline(inp)
        with pytest.raises(WorkflowFailureError) as failed:
            await client.result(run_id)
        children = await _children_started(client, run_id)

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "PhaseFailed"
    assert f"task {run_id}/task-001-data_analysis failed" in cause.message
    assert children == 0
    charter = await charter_for_run(store_pool, run_id, "acme")
    assert [r.event for r in charter] == [
        "pipeline_started", "phase_started", "task_started", "task_failed", "phase_failed", "pipeline_failed",
    ]  # fmt: skip
    assert charter[3].message == "Crunch_Ang could not complete the task"
    (task_failed,) = await _ledger_details(store_pool, run_id, EventKind.TASK_FAILED)
    assert "data_analysis" in task_failed["error"]  # the reason stays in the Ledger


async def test_cancelling_a_run_while_its_phase_task_computes_cancels_the_task_too(
    dev_env: WorkflowEnvironment, event_store: EventSink, store_pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _first_phase_runs(PhaseTask(task_type="code_generation", payload={"prompt": "add two numbers"}))
    inp = PipelineInput(tenant="acme", project_id="clinic", brief=BRIEF, spec=spec)
    async with worker_behind_a_slow_chat_api(dev_env, event_store, monkeypatch, processes=2) as (
        client,
        server,
    ):
        run_id = await client.start_pipeline(inp)
        await until_asked(server, what="the phase's specialist to call the chat API")
        receipt = await client.cancel(run_id, by="dana", reason="not needed")
        result = await client.result(run_id)
        children = await _children_started(client, run_id)

    assert receipt.status == "applied"
    assert result.status is RunStatus.CANCELLED
    assert children == 0
    charter = await charter_for_run(store_pool, run_id, "acme")
    assert [(r.event, r.status) for r in charter] == [
        ("pipeline_started", "ok"), ("phase_started", "ok"), ("task_started", "ok"),
        ("task_cancelled", "cancelled"), ("pipeline_cancelled", "cancelled"),
    ]  # fmt: skip
    assert charter[3].message == "Code_Ang was cancelled"
    (details,) = await _ledger_details(store_pool, run_id, EventKind.TASK_CANCELLED)
    assert (details["cancelled_by"], details["reason"]) == ("dana", "not needed")
