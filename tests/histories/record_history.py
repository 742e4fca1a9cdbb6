"""Record the workflow histories that tests/test_replay.py replays.

    .venv/bin/python -m tests.histories.record_history

Starts a fresh Temporal dev server and a time-skipping test server, runs three
ValidationPipeline runs with the workflow code as it is now, and writes each run's
history beside this file. Rerun it whenever the workflow changes on purpose (and
commit the JSON); a replay that fails without such a change is a nondeterminism bug.

Events go to an in-memory sink: the histories hold only what `record_events`
returned, so Postgres adds nothing to them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from boomerang.binaries import temporal_cli, temporal_test_server
from boomerang.client import BoomerangClient
from boomerang.constants import SEARCH_ATTRIBUTES
from boomerang.models.decisions import DecisionInput, DecisionReceipt, RunStatus
from boomerang.models.events import RunEvent
from boomerang.models.pipeline import Decision, PipelineInput
from tests.helpers import BRIEF, wait_for_checkpoint
from worker import build_worker

HERE = Path(__file__).parent
HAPPY = "happy_path"
REJECTED = "rejected"
EXPIRED = "expired"

Scenario = Callable[[WorkflowEnvironment, BoomerangClient, str], Awaitable[RunStatus]]


class MemorySink:
    """An `EventSink` that keeps events in memory, once per key."""

    def __init__(self) -> None:
        self.events: dict[str, RunEvent] = {}

    async def record(self, event: RunEvent) -> bool:
        return self.events.setdefault(event.event_key, event) is event


async def _decide(
    client: BoomerangClient, run_id: str, checkpoint: str, decision: Decision = Decision.APPROVE,
    **kw: object,
) -> None:  # fmt: skip
    await wait_for_checkpoint(client, run_id, checkpoint)
    d = DecisionInput.model_validate(
        {"checkpoint": checkpoint, "approver": "alice", "decision": decision, **kw}
    )
    await client.decide(run_id, d)


async def _update(client: BoomerangClient, run_id: str, checkpoint: str) -> None:
    """The bare `decide` update, as a person at the Temporal CLI sends it."""
    await wait_for_checkpoint(client, run_id, checkpoint)
    await client.temporal.get_workflow_handle(run_id).execute_update(
        "decide", DecisionInput(checkpoint=checkpoint, approver="dana"), result_type=DecisionReceipt
    )


async def _signal(client: BoomerangClient, run_id: str, name: str, payload: object) -> None:
    await client.temporal.get_workflow_handle(run_id).signal(name, payload)


async def happy_path(_env: WorkflowEnvironment, client: BoomerangClient, run_id: str) -> RunStatus:
    """All ten checkpoints, the client's way (query, signal, query), by the bare update
    and by each signal, with an iterate, a pivot, an override, a refused signal and a
    repeated decision id."""
    await _decide(client, run_id, "approve_founders_brief", Decision.ITERATE, comment="name the payer")
    await wait_for_checkpoint(client, run_id, "approve_founders_brief")
    await _signal(client, run_id, "approve", {"checkpoint": "nope", "approver": "alice"})
    await _signal(client, run_id, "approve", {"checkpoint": "approve_founders_brief", "approver": "bob"})
    await _decide(client, run_id, "approve_customer_profile", decision_id="cp-1")
    # The same id again is a no-op, and an early signal is held until its checkpoint opens.
    await client.decide(
        run_id,
        DecisionInput(checkpoint="approve_customer_profile", approver="alice", decision_id="cp-1"),
    )
    await _signal(
        client, run_id, "decide",
        {"checkpoint": "approve_vpc_completion", "approver": "carol", "decision": "approve"},
    )  # fmt: skip
    for name in ("approve_experiment_plan", "approve_campaign_launch", "approve_spend_increase"):
        await _decide(client, run_id, name)
    await _decide(
        client, run_id, "approve_desirability_gate", Decision.PIVOT,
        target_phase="vpc_discovery", comment="clinics with in-house billing",
    )  # fmt: skip
    for name in (
        "approve_customer_profile", "approve_vpc_completion", "approve_experiment_plan",
        "approve_campaign_launch", "approve_spend_increase",
    ):  # fmt: skip
        await _decide(client, run_id, name)
    await _decide(client, run_id, "approve_desirability_gate", Decision.OVERRIDE_PROCEED)
    await _update(client, run_id, "approve_feasibility_gate")
    for name in ("approve_viability_gate", "request_human_decision"):
        await _decide(client, run_id, name)
    return (await client.result(run_id)).status


async def rejected(_env: WorkflowEnvironment, client: BoomerangClient, run_id: str) -> RunStatus:
    await _decide(client, run_id, "approve_founders_brief")
    await wait_for_checkpoint(client, run_id, "approve_customer_profile")
    await _signal(client, run_id, "reject", {"checkpoint": "approve_customer_profile", "approver": "alice"})
    return (await client.result(run_id)).status


async def expired(env: WorkflowEnvironment, client: BoomerangClient, run_id: str) -> RunStatus:
    await wait_for_checkpoint(client, run_id, "approve_founders_brief")
    # The time-skipping server jumps past the reminder and the seven-day deadline.
    await env.sleep(timedelta(days=8))
    return (await client.result(run_id)).status


@asynccontextmanager
async def _worker(env: WorkflowEnvironment, backend: LocalBackend) -> AsyncIterator[BoomerangClient]:
    task_queue = f"history-{uuid.uuid4().hex}"
    async with build_worker(env.client, task_queue=task_queue, backend=backend, events=MemorySink()):
        yield BoomerangClient(env.client, task_queue=task_queue)


async def _record(
    env: WorkflowEnvironment, backend: LocalBackend, name: str, scenario: Scenario, want: RunStatus
) -> Path:
    run_id = f"history-{name}"
    async with _worker(env, backend) as client:
        await client.start_pipeline(
            PipelineInput(tenant="acme", project_id="clinic", brief=BRIEF), run_id=run_id
        )
        got = await scenario(env, client, run_id)
        if got is not want:
            raise RuntimeError(f"{name}: the run ended {got.value}, expected {want.value}")
        history = await client.temporal.get_workflow_handle(run_id).fetch_history()
    path = HERE / f"{name}.json"
    path.write_text(history.to_json() + "\n")
    return path


async def _skip_env() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server()),
        data_converter=pydantic_data_converter,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in SEARCH_ATTRIBUTES
            },
        )
    )
    return env


async def main() -> None:
    backend = LocalBackend(max_concurrency=2)
    dev = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
    )
    try:
        print(await _record(dev, backend, HAPPY, happy_path, RunStatus.COMPLETED))
        print(await _record(dev, backend, REJECTED, rejected, RunStatus.REJECTED))
        skip = await _skip_env()
        try:
            print(await _record(skip, backend, EXPIRED, expired, RunStatus.EXPIRED))
        finally:
            await skip.shutdown()
    finally:
        await dev.shutdown()
        await backend.aclose()


if __name__ == "__main__":
    asyncio.run(main())
