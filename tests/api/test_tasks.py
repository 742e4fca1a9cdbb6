"""Tasks over HTTP: POST /tasks starts a BoomerAngTask, GET /tasks/{id} shows it customer-safe."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import JsonValue

from boomerang.models.pipeline import PipelineInput
from boomerang.models.task_view import TaskView, customer_output, customer_summary
from tests.api import Api
from tests.api import api_fixture as api_fixture
from tests.helpers import BRIEF, wait_until

CRUNCH = {
    "task_type": "data_analysis",
    "payload": {"columns": {"x": [1, 2, 3, 4], "y": [3, 5, 7, 9]}, "target": "y"},
}
INTERNAL = ("cost", "provider", "model", "render_with", "gpu_type", "tokens", "price")


async def _ended(api: Api, task_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        got = await api.http.get(f"/tasks/{task_id}", headers=api.auth(api.viewer))
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return None if body["status"] == "running" else body

    return await wait_until(probe, what=f"task {task_id} to end")


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {str(k).lower() for k in value} | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def test_a_task_started_over_http_shows_its_outcome_and_nothing_internal(api: Api) -> None:
    started = await api.http.post("/tasks", json=CRUNCH, headers=api.auth(api.approver))
    assert started.status_code == 202, started.text
    task_id = started.json()["task_id"]
    assert started.headers["location"] == started.json()["status_url"] == f"/tasks/{task_id}"
    first = await api.http.get(f"/tasks/{task_id}", headers=api.auth(api.viewer))
    assert first.status_code == 200 and first.json()["status"] in ("running", "completed")

    body = await _ended(api, task_id)
    view = TaskView.model_validate(body)
    assert (view.status, view.task_type, view.boomer_ang_id) == ("completed", "data_analysis", "Crunch_Ang")
    assert view.output is not None
    regression = view.output["regression"]
    assert isinstance(regression, dict) and regression["intercept"] == pytest.approx(1.0)
    assert view.summary and view.summary.startswith("Crunch_Ang analysed 4 rows")
    assert view.execution_time_s is not None and view.execution_time_s >= 0
    assert view.message == "Crunch_Ang completed the task"
    assert view.started_at is not None and view.finished_at is not None
    assert not [k for k in _keys(body) if any(word in k for word in INTERNAL)], sorted(_keys(body))
    # The same task through the client: one task, whichever door started it.
    outcome = await api.client.task_result(task_id)
    assert outcome.output == view.output


async def test_tasks_are_tenant_scoped_and_starting_needs_an_approver(api: Api) -> None:
    started = await api.http.post("/tasks", json=CRUNCH, headers=api.auth(api.approver))
    task_id = started.json()["task_id"]
    stranger = await api.http.get(f"/tasks/{task_id}", headers=api.auth(api.stranger))
    missing = await api.http.get("/tasks/task-no-such-task", headers=api.auth(api.viewer))
    as_viewer = await api.http.post("/tasks", json=CRUNCH, headers=api.auth(api.viewer))
    anonymous = await api.http.post("/tasks", json=CRUNCH)
    run_id = await api.client.start_pipeline(PipelineInput(tenant=api.tenant, project_id="p", brief=BRIEF))
    a_pipeline = await api.http.get(f"/tasks/{run_id}", headers=api.auth(api.viewer))
    await _ended(api, task_id)

    assert (stranger.status_code, stranger.json()) == (404, {"detail": f"no task {task_id!r}"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "no task 'task-no-such-task'"})
    assert a_pipeline.status_code == 404
    assert as_viewer.status_code == 403
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    ("body", "loc", "says"),
    [
        ({**CRUNCH, "tenant": "someone-else"}, ["body", "tenant"], "Extra inputs are not permitted"),
        ({**CRUNCH, "max_cost_usd": 0}, ["body", "max_cost_usd"], "Input should be greater than 0"),
        ({"payload": {}}, ["body", "task_type"], "Field required"),
        ({**CRUNCH, "payload": []}, ["body", "payload"], "Input should be a valid dictionary"),
    ],
)
async def test_bad_task_bodies_are_refused_before_anything_starts(
    api: Api, body: dict[str, Any], loc: list[str], says: str
) -> None:
    got = await api.http.post("/tasks", json=body, headers=api.auth(api.approver))
    assert got.status_code == 422, got.text
    (error,) = got.json()["detail"]
    assert error["loc"] == loc and says in error["msg"]


async def test_failed_and_refused_tasks_say_so_in_customer_terms(api: Api) -> None:
    unknown = await api.http.post(
        "/tasks", json={"task_type": "juggling", "payload": {}}, headers=api.auth(api.approver)
    )
    expensive = await api.http.post("/tasks", json={**CRUNCH, "max_cost_usd": "0.0000000001"},
                                    headers=api.auth(api.approver))  # fmt: skip
    failed = await _ended(api, unknown.json()["task_id"])
    refused = await _ended(api, expensive.json()["task_id"])

    assert (failed["status"], failed["message"], failed["output"]) == (
        "failed", "The task could not be started", None,
    )  # fmt: skip
    assert refused["status"] == "failed"
    assert refused["message"] == "The task was not started: it would exceed its budget"
    assert "0.0000000001" not in json.dumps(refused)


def test_customer_output_drops_internal_keys_at_any_depth() -> None:
    output: dict[str, JsonValue] = {
        "spec": {"layout": "hero", "render_with": "flux-schnell", "palette": ["#fff"]},
        "usage": {"input_tokens": 3},
        "Model_Name": "gpt",
        "items": [{"provider": "openrouter", "text": "kept"}],
    }
    assert customer_output(output) == {
        "spec": {"layout": "hero", "palette": ["#fff"]},
        "items": [{"text": "kept"}],
    }
    assert customer_summary("Code_Ang wrote 3 lines of python", {"openrouter", "gpt-4.1-nano"}) is not None
    assert customer_summary("answered by gpt-4.1-nano", {"openrouter", "gpt-4.1-nano"}) is None
    assert customer_summary("total cost 3", set()) is None


async def test_design_output_over_http_has_no_model(api: Api) -> None:
    design = {"task_type": "design", "payload": {"brief": "A calm booking page for dental clinics"}}
    started = await api.http.post("/tasks", json=design, headers=api.auth(api.approver))
    body = await _ended(api, started.json()["task_id"])
    assert body["status"] == "completed", body
    assert body["output"]["layout"] and body["output"]["palette"]
    assert "render_with" not in json.dumps(body)
    outcome = await api.client.task_result(started.json()["task_id"])
    assert outcome.output["render_with"] == "flux-schnell"  # kept for the Ledger side, not shown
