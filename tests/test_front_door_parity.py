"""Every front door does every job the same way: the CLI, the HTTP API and the Python client.

One parametrised test drives a run through each door against the same stack (one
worker, one dev server, one Postgres): start, status, approvals, a bad decision, a
good one, cancel, cancel again, a decision after the cancel, the Charter and the
cost (not over HTTP: cost is internal). Each door must reach the same outcome and
give the same refusal text for the same bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.errors import CancelRefusedError, InvalidDecisionError
from boomerang.models.decisions import DecisionInput, RunStatus
from boomerang.models.pipeline import PipelineInput
from boomerang.store.queries import Pool
from tests.front_doors import FrontDoors, front_doors
from tests.helpers import BRIEF, CHECKPOINTS, wait_for_checkpoint, wait_until
from tests.test_cli import BOOMERANG, run


@dataclass(frozen=True)
class Answer:
    """What a door said: ok or refused, a status word, and the refusal text (one line)."""

    ok: bool
    status: str = ""
    message: str = ""


class Door:
    """One front door; each method performs one job through it."""

    def __init__(self, doors: FrontDoors) -> None:
        self.d = doors

    async def start(self) -> str:
        raise NotImplementedError

    async def status(self, run_id: str) -> tuple[str, list[str]]:
        raise NotImplementedError

    async def approvals(self) -> list[str]:
        raise NotImplementedError

    async def decide(self, run_id: str, checkpoint: str) -> Answer:
        raise NotImplementedError

    async def cancel(self, run_id: str, reason: str) -> Answer:
        raise NotImplementedError

    async def charter(self, run_id: str) -> list[str]:
        raise NotImplementedError

    async def cost(self, run_id: str) -> Decimal | None:
        raise NotImplementedError


class CliDoor(Door):
    async def _run(self, *args: str) -> tuple[int, str, str]:
        ran = await run(str(BOOMERANG), *args, env=self.d.env)
        return ran.code, ran.out, ran.err

    async def start(self) -> str:
        code, out, err = await self._run(
            "pipeline", "start", "--tenant", self.d.tenant, "--project-id", "clinic", "--brief", BRIEF
        )
        assert code == 0, err
        return out.strip()

    async def status(self, run_id: str) -> tuple[str, list[str]]:
        code, out, err = await self._run("status", run_id, "--json")
        assert code == 0, err
        st = json.loads(out)
        return st["status"], [cp["name"] for cp in st["pending"]]

    async def approvals(self) -> list[str]:
        code, out, err = await self._run("approvals", "--tenant", self.d.tenant, "--json")
        assert code == 0, err
        return [p["run_id"] for p in json.loads(out)]

    async def decide(self, run_id: str, checkpoint: str) -> Answer:
        code, out, err = await self._run(
            "decide", run_id, checkpoint, "approve", "--by", self.d.approver_name
        )
        if code == 0:
            return Answer(True, out.split(":", 1)[0])
        assert code == 2, err
        return Answer(False, message=err.strip().removeprefix("refused: "))

    async def cancel(self, run_id: str, reason: str) -> Answer:
        code, out, err = await self._run("cancel", run_id, "--reason", reason, "--by", self.d.approver_name)
        if code == 0:
            return Answer(True, out.split(":", 1)[0])
        assert code == 2, err
        return Answer(False, message=err.strip().removeprefix("refused: "))

    async def charter(self, run_id: str) -> list[str]:
        code, out, err = await self._run("charter", run_id, "--tenant", self.d.tenant)
        assert code == 0, err
        return [json.loads(line)["event"] for line in out.splitlines()]

    async def cost(self, run_id: str) -> Decimal | None:
        code, out, err = await self._run("cost", run_id, "--json")
        assert code == 0, err
        return Decimal(json.loads(out)["total_cost"])


class ApiDoor(Door):
    @property
    def _auth(self) -> dict[str, str]:
        return self.d.auth(self.d.approver)

    async def start(self) -> str:
        got = await self.d.http.post(
            "/kickoff", json={"project_id": "clinic", "brief": BRIEF}, headers=self._auth
        )
        assert got.status_code == 202, got.text
        run_id: str = got.json()["run_id"]
        return run_id

    async def status(self, run_id: str) -> tuple[str, list[str]]:
        got = await self.d.http.get(f"/status/{run_id}", headers=self._auth)
        assert got.status_code == 200, got.text
        return got.json()["status"], [cp["name"] for cp in got.json()["pending"]]

    async def approvals(self) -> list[str]:
        got = await self.d.http.get("/approvals", headers=self._auth)
        assert got.status_code == 200, got.text
        return [p["run_id"] for p in got.json()]

    async def decide(self, run_id: str, checkpoint: str) -> Answer:
        body = {"run_id": run_id, "checkpoint": checkpoint}
        got = await self.d.http.post("/hitl/approve", json=body, headers=self._auth)
        if got.status_code == 200:
            return Answer(True, got.json()["status"])
        assert got.status_code == 409, got.text
        return Answer(False, message=got.json()["detail"])

    async def cancel(self, run_id: str, reason: str) -> Answer:
        got = await self.d.http.post(f"/runs/{run_id}/cancel", json={"reason": reason}, headers=self._auth)
        if got.status_code == 200:
            return Answer(True, got.json()["status"])
        assert got.status_code == 409, got.text
        return Answer(False, message=got.json()["detail"])

    async def charter(self, run_id: str) -> list[str]:
        got = await self.d.http.get(f"/runs/{run_id}/charter", headers=self._auth)
        assert got.status_code == 200, got.text
        return [row["event"] for row in got.json()]

    async def cost(self, run_id: str) -> Decimal | None:
        got = await self.d.http.get(f"/runs/{run_id}/cost", headers=self._auth)
        assert got.status_code == 404  # costs are internal: no route serves them to a tenant
        return None


class ClientDoor(Door):
    async def start(self) -> str:
        return await self.d.client.start_pipeline(
            PipelineInput(tenant=self.d.tenant, project_id="clinic", brief=BRIEF)
        )

    async def status(self, run_id: str) -> tuple[str, list[str]]:
        st = await self.d.client.status(run_id)
        return st.status.value, [cp.name for cp in st.pending]

    async def approvals(self) -> list[str]:
        return [p.run_id for p in await self.d.client.pending_approvals(self.d.tenant)]

    async def decide(self, run_id: str, checkpoint: str) -> Answer:
        try:
            receipt = await self.d.client.decide(
                run_id, DecisionInput(checkpoint=checkpoint, approver=self.d.approver_name)
            )
        except InvalidDecisionError as exc:
            return Answer(False, message=str(exc))
        return Answer(True, receipt.status.value)

    async def cancel(self, run_id: str, reason: str) -> Answer:
        try:
            receipt = await self.d.client.cancel(run_id, by=self.d.approver_name, reason=reason)
        except CancelRefusedError as exc:
            return Answer(False, message=str(exc))
        return Answer(True, receipt.status)

    async def charter(self, run_id: str) -> list[str]:
        return [row.event for row in await self.d.client.charter(run_id, tenant=self.d.tenant)]

    async def cost(self, run_id: str) -> Decimal | None:
        return (await self.d.client.cost(run_id)).total_cost


DOORS: dict[str, Callable[[FrontDoors], Door]] = {"cli": CliDoor, "api": ApiDoor, "client": ClientDoor}


@pytest.mark.parametrize("door_name", list(DOORS))
async def test_each_front_door_does_each_job_with_the_same_outcome_and_messages(
    door_name: str,
    dev_env: WorkflowEnvironment,
    backend: LocalBackend,
    event_store: EventSink,
    store_pool: Pool,
    pg_conninfo: str,
) -> None:
    async with front_doors(dev_env, backend, event_store, store_pool, pg_conninfo) as doors:
        door = DOORS[door_name](doors)
        run_id = await door.start()
        await wait_for_checkpoint(doors.client, run_id, CHECKPOINTS[0])
        status = await door.status(run_id)

        async def listed() -> list[str] | None:
            found = await door.approvals()
            return found if run_id in found else None

        # The list comes from Temporal's visibility store, which trails the run a little.
        approvals = await wait_until(listed, what=f"{run_id} in {door_name} approvals")
        unknown = await door.decide(run_id, "approve_everything")
        decided = await door.decide(run_id, CHECKPOINTS[0])
        await wait_for_checkpoint(doors.client, run_id, CHECKPOINTS[1])
        cancelled = await door.cancel(run_id, "the founders stopped")
        again = await door.cancel(run_id, "twice")
        result = await doors.client.result(run_id)
        late = await door.decide(run_id, CHECKPOINTS[1])
        after = await door.status(run_id)
        charter = await door.charter(run_id)
        cost = await door.cost(run_id)

        # A run that ended otherwise refuses a cancel, with its status.
        other = await doors.client.start_pipeline(
            PipelineInput(tenant=doors.tenant, project_id="x", brief=BRIEF)
        )
        await wait_for_checkpoint(doors.client, other, CHECKPOINTS[0])
        await doors.client.decide(
            other, DecisionInput(checkpoint=CHECKPOINTS[0], approver="a", decision="reject")
        )
        await doors.client.result(other)
        finished = await door.cancel(other, "too late")

    assert status == ("awaiting_approval", [CHECKPOINTS[0]])
    assert approvals == [run_id]
    assert unknown == Answer(
        False, message=f"unknown checkpoint 'approve_everything'; this run has: {', '.join(CHECKPOINTS)}"
    )
    assert decided == Answer(True, "applied")
    assert cancelled == Answer(True, "applied")
    assert again == Answer(True, "duplicate")
    assert result.status is RunStatus.CANCELLED
    assert result.cancellation is not None
    assert (result.cancellation.by, result.cancellation.reason) == (
        doors.approver_name,
        "the founders stopped",
    )
    assert late == Answer(False, message=f"run {run_id} has finished (cancelled); it takes no more decisions")
    assert after == ("cancelled", [])
    assert charter[0] == "pipeline_started"
    assert charter[-2:] == ["checkpoint_cancelled", "pipeline_cancelled"]
    assert charter.count("checkpoint_decided") == 1
    if door_name == "api":
        assert cost is None
    else:
        assert cost is not None and cost >= 0
    assert finished == Answer(False, message=f"run {other} has finished (rejected); nothing to cancel")
