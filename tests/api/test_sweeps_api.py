"""Sweeps over HTTP: POST /sweeps, GET /sweeps/{id}, GET /sweeps/{id}/results, tenant-scoped."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.api import create_app
from boomerang.artifacts import LocalArtifactStore
from boomerang.client import BoomerangClient
from boomerang.models.pipeline import PipelineInput
from boomerang.models.sweeps import SweepResult
from boomerang.settings import Settings
from boomerang.store.costs import LedgerCosts
from boomerang.store.queries import Pool
from boomerang.store.sweeps import SweepResults
from boomerang.store.tokens import ApiRole
from tests.api import Api, make_token
from tests.helpers import BRIEF, wait_until
from worker import build_worker

GRID = {"walkers": [50, 100], "steps": [10, 20], "seed": [1, 2, 3]}
SIMULATE = {"function": "sweep_simulate", "grid": GRID, "batch_by": "seed", "max_parallel": 2}
PROGRESS_KEYS = {
    "sweep_id",
    "status",
    "total",
    "done",
    "failed",
    "running",
    "pending",
    "spent_usd",
    "batches",
}
INTERNAL = ("provider", "model", "gpu", "tokens", "price", "traceback")


@pytest.fixture(name="api")
async def sweeps_api(
    dev_env: WorkflowEnvironment,
    backend: LocalBackend,
    event_store: EventSink,
    store_pool: Pool,
    tmp_path: Path,
) -> AsyncIterator[Api]:
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    task_queue = f"tq-{uuid.uuid4().hex}"
    async with build_worker(
        dev_env.client, task_queue=task_queue, backend=backend, events=event_store,
        costs=LedgerCosts(store_pool), sweeps=(SweepResults(store_pool), LocalArtifactStore(tmp_path / "a")),
    ):  # fmt: skip
        client = BoomerangClient(dev_env.client, task_queue=task_queue)
        app = create_app(client=client, pool=store_pool, settings=Settings())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://boomerang.test") as http:
            yield Api(
                http=http, client=client, tenant=tenant, approver_name="alice",
                approver=await make_token(store_pool, tenant, ApiRole.APPROVER, "alice"),
                viewer=await make_token(store_pool, tenant, ApiRole.VIEWER),
                stranger=await make_token(store_pool, f"other-{tenant}", ApiRole.APPROVER),
            )  # fmt: skip


async def _ended(api: Api, sweep_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        got = await api.http.get(f"/sweeps/{sweep_id}", headers=api.auth(api.viewer))
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return None if body["status"] in ("running", "awaiting_approval") else body

    return await wait_until(probe, what=f"sweep {sweep_id} to end")


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {str(k).lower() for k in value} | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def test_a_sweep_started_over_http_shows_progress_and_exports_every_item_once(api: Api) -> None:
    started = await api.http.post("/sweeps", json=SIMULATE, headers=api.auth(api.approver))
    assert started.status_code == 202, started.text
    sweep_id = started.json()["sweep_id"]
    assert started.headers["location"] == started.json()["status_url"] == f"/sweeps/{sweep_id}"
    first = await api.http.get(f"/sweeps/{sweep_id}", headers=api.auth(api.viewer))
    assert first.status_code == 200, first.text
    assert set(first.json()) >= PROGRESS_KEYS and first.json()["total"] == 12

    body = await _ended(api, sweep_id)
    assert (body["status"], body["done"], body["failed"], body["running"], body["pending"]) == (
        "completed", 12, 0, 0, 0,
    )  # fmt: skip
    assert [(b["key"], b["done"], b["total"]) for b in body["batches"]] == [
        ("1", 4, 4),
        ("2", 4, 4),
        ("3", 4, 4),
    ]
    assert float(body["spent_usd"]) > 0
    assert not [k for k in _keys(body) if any(word in k for word in INTERNAL)], sorted(_keys(body))

    jsonl = await api.http.get(f"/sweeps/{sweep_id}/results", headers=api.auth(api.viewer))
    assert jsonl.status_code == 200 and jsonl.headers["content-type"].startswith("application/x-ndjson")
    rows = [SweepResult.model_validate_json(line) for line in jsonl.text.splitlines()]
    assert [r.item_index for r in rows] == list(range(12))
    assert {(r.params["walkers"], r.params["steps"], r.params["seed"]) for r in rows} == {
        (w, s, seed) for w in GRID["walkers"] for s in GRID["steps"] for seed in GRID["seed"]
    }
    assert {r.status for r in rows} == {"succeeded"}
    draws = [int(str(r.params["walkers"])) * int(str(r.params["steps"])) for r in rows]
    assert [r.output and r.output["draws"] for r in rows] == draws

    as_csv = await api.http.get(f"/sweeps/{sweep_id}/results?format=csv", headers=api.auth(api.viewer))
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(r["item_index"]) for r in table] == list(range(12))
    assert [json.loads(r["params"]) for r in table] == [r.params for r in rows]
    bad_format = await api.http.get(f"/sweeps/{sweep_id}/results?format=xml", headers=api.auth(api.viewer))
    assert bad_format.status_code == 422


async def test_sweeps_are_tenant_scoped_and_starting_needs_an_approver(api: Api) -> None:
    started = await api.http.post("/sweeps", json=SIMULATE, headers=api.auth(api.approver))
    sweep_id = started.json()["sweep_id"]
    stranger = await api.http.get(f"/sweeps/{sweep_id}", headers=api.auth(api.stranger))
    stranger_results = await api.http.get(f"/sweeps/{sweep_id}/results", headers=api.auth(api.stranger))
    stranger_cancel = await api.http.post(f"/sweeps/{sweep_id}/cancel", headers=api.auth(api.stranger))
    missing = await api.http.get("/sweeps/sweep-no-such-sweep", headers=api.auth(api.viewer))
    as_viewer = await api.http.post("/sweeps", json=SIMULATE, headers=api.auth(api.viewer))
    anonymous = await api.http.post("/sweeps", json=SIMULATE)
    run_id = await api.client.start_pipeline(PipelineInput(tenant=api.tenant, project_id="p", brief=BRIEF))
    a_pipeline = await api.http.get(f"/sweeps/{run_id}", headers=api.auth(api.viewer))
    await api.client.cancel(run_id, by="test")
    await _ended(api, sweep_id)

    assert (stranger.status_code, stranger.json()) == (404, {"detail": f"no sweep {sweep_id!r}"})
    assert stranger_results.status_code == 404 and stranger_cancel.status_code == 404
    assert (missing.status_code, missing.json()) == (404, {"detail": "no sweep 'sweep-no-such-sweep'"})
    assert a_pipeline.status_code == 404
    assert as_viewer.status_code == 403
    assert anonymous.status_code == 401


async def test_cancel_over_http_keeps_what_finished(api: Api) -> None:
    # A cap below one item's estimate: the sweep waits at its budget checkpoint, nothing in flight.
    body = {**SIMULATE, "max_cost_usd": "0.0000000001"}
    started = await api.http.post("/sweeps", json=body, headers=api.auth(api.approver))
    sweep_id = started.json()["sweep_id"]

    async def paused() -> dict[str, Any] | None:
        got = (await api.http.get(f"/sweeps/{sweep_id}", headers=api.auth(api.viewer))).json()
        return got if got["status"] == "awaiting_approval" else None

    waiting = await wait_until(paused, what="the budget checkpoint")
    cancelled = await api.http.post(
        f"/sweeps/{sweep_id}/cancel", json={"reason": "too dear"}, headers=api.auth(api.approver)
    )
    final = await _ended(api, sweep_id)
    assert waiting["awaiting"] == ["approve_budget_increase"] and Decimal(waiting["max_cost_usd"]) == Decimal(
        "1e-10"
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["by"]) == ("applied", "alice")
    assert (final["status"], final["done"], final["pending"]) == ("cancelled", 0, 12)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"function": "nope", "grid": {"x": [1]}}, "no compute function 'nope'"),
        ({"task_type": "juggling", "grid": {"x": [1]}}, "no specialist handles task type 'juggling'"),
        ({"function": "sweep_simulate", "grid": {}}, "the grid is empty"),
        ({**SIMULATE, "batch_by": "region"}, "batch_by axis 'region'"),
        ({**SIMULATE, "max_parallel": 0}, "max_parallel must be"),
        (
            {"function": "sweep_simulate", "items": [{"steps": 1}, {"steps": -1}, {"walkers": "many"}]},
            "2 of 3 items do not fit sweep_simulate's payload",
        ),
        ({**SIMULATE, "tenant": "someone-else"}, "Extra inputs are not permitted"),
        ({**SIMULATE, "heartbeat_timeout_s": 1}, "Extra inputs are not permitted"),
    ],
)  # fmt: skip
async def test_bad_sweeps_are_a_422_that_names_the_problem(api: Api, body: dict[str, Any], says: str) -> None:
    got = await api.http.post("/sweeps", json=body, headers=api.auth(api.approver))
    assert got.status_code == 422, got.text
    (error,) = got.json()["detail"]
    assert says in error["msg"], error
