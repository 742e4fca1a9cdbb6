"""POST /runs/{run_id}/cancel: approver only, own tenant only, who cancels is the token's name."""

from __future__ import annotations

from boomerang.models.decisions import RunStatus
from boomerang.models.pipeline import PipelineInput
from tests.api import Api
from tests.api import api_fixture as api_fixture
from tests.helpers import BRIEF, CHECKPOINTS, wait_for_checkpoint


async def test_cancel_needs_an_approver_of_the_runs_tenant(api: Api) -> None:
    run_id = await api.client.start_pipeline(PipelineInput(tenant=api.tenant, project_id="p", brief=BRIEF))
    await wait_for_checkpoint(api.client, run_id, CHECKPOINTS[0])
    url = f"/runs/{run_id}/cancel"
    as_viewer = await api.http.post(url, headers=api.auth(api.viewer))
    as_stranger = await api.http.post(url, json={"reason": "mine now"}, headers=api.auth(api.stranger))
    anonymous = await api.http.post(url)
    bad = await api.http.post(url, json={"reason": "x", "by": "mallory"}, headers=api.auth(api.approver))
    missing = await api.http.post("/runs/vp-no-such-run/cancel", headers=api.auth(api.approver))
    still = await api.client.status(run_id)
    cancelled = await api.http.post(url, headers=api.auth(api.approver))  # no body: no reason
    result = await api.client.result(run_id)

    assert as_viewer.status_code == 403
    assert (as_stranger.status_code, as_stranger.json()) == (404, {"detail": f"no run {run_id!r}"})
    assert anonymous.status_code == 401
    assert bad.status_code == 422  # `by` is never a field: the canceller is the token's name
    assert (missing.status_code, missing.json()) == (404, {"detail": "no run 'vp-no-such-run'"})
    assert still.status is RunStatus.AWAITING_APPROVAL
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["status"], body["by"], body["reason"], body["run_id"]) == (
        "applied",
        api.approver_name,
        None,
        run_id,
    )
    assert result.status is RunStatus.CANCELLED
