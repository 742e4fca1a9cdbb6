"""Kickoff, approvals and decisions through the API land exactly as through the Python client."""

from __future__ import annotations

from typing import Any

import pytest

from boomerang.errors import InvalidDecisionError
from boomerang.models.decisions import DecisionInput, DecisionReceipt
from boomerang.store.queries import Pool, charter_for_run
from tests.api import Api, api_fixture  # noqa: F401  (the `api` fixture)
from tests.helpers import BRIEF, wait_for_checkpoint, wait_until

FIRST = "approve_founders_brief"


async def _kickoff(api: Api, **body: Any) -> str:
    response = await api.http.post(
        "/kickoff", headers=api.auth(api.approver), json={"project_id": "clinic", "brief": BRIEF, **body}
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    assert response.headers["location"] == f"/status/{run_id}"
    return run_id


async def test_kickoff_approvals_and_a_decision_through_the_api(api: Api, store_pool: Pool) -> None:
    run_id = await _kickoff(api)
    await wait_for_checkpoint(api.client, run_id, FIRST)

    async def listed() -> list[Any] | None:
        response = await api.http.get("/approvals", headers=api.auth(api.viewer))
        found = [p for p in response.json() if p["run_id"] == run_id]
        return found or None

    [pending] = await wait_until(listed, what=f"{run_id} in /approvals")
    assert pending["checkpoint"]["name"] == FIRST and pending["tenant"] == api.tenant
    # What the approver needs to decide, and the opening to name.
    assert pending["checkpoint"]["opening"] == 1
    assert pending["checkpoint"]["context"]["summary"].startswith("3 sentences; problem:")
    assert pending["checkpoint"]["context"]["recommendation"] == "approve"

    decided = await api.http.post(
        "/hitl/approve",
        headers=api.auth(api.approver),
        json={"run_id": run_id, "checkpoint": FIRST, "comment": "clear brief", "decision_id": "d-1"},
    )
    assert decided.status_code == 200, decided.text
    receipt = DecisionReceipt.model_validate(decided.json())
    assert (receipt.decision_id, receipt.checkpoint, receipt.decision.value, receipt.status) == (
        "d-1", FIRST, "approve", "applied",
    )  # fmt: skip

    # The same id again, through the client this time: one decision, a duplicate receipt.
    again = await api.client.decide(
        run_id, DecisionInput(checkpoint=FIRST, approver=api.approver_name, decision_id="d-1")
    )
    assert again.status == "duplicate"

    status = (await api.http.get(f"/status/{run_id}", headers=api.auth(api.viewer))).json()
    [decision] = status["decisions"]
    # The approver is the token's name, whatever the body might have wanted.
    assert (decision["approver"], decision["via"], decision["comment"]) == (
        api.approver_name,
        "client",
        "clear brief",
    )

    async def decided_in_charter() -> list[Any] | None:
        rows = await charter_for_run(store_pool, run_id, api.tenant)
        return rows if any(r.event == "checkpoint_decided" for r in rows) else None

    rows = await wait_until(decided_in_charter, what="the decision in the Charter")
    served = (await api.http.get(f"/runs/{run_id}/charter", headers=api.auth(api.viewer))).json()
    assert [r["event"] for r in served][: len(rows)] == [r.event for r in rows]


@pytest.mark.parametrize(
    "decision",
    [
        {"checkpoint": "no_such_checkpoint"},
        {"checkpoint": "approve_customer_profile"},  # not open yet
        {"checkpoint": FIRST, "decision": "pivot"},  # not offered here
        {"checkpoint": FIRST, "decision": "override_proceed"},
    ],
)
async def test_refusals_carry_the_same_message_as_the_client(api: Api, decision: dict[str, Any]) -> None:
    run_id = await _kickoff(api)
    await wait_for_checkpoint(api.client, run_id, FIRST)

    with pytest.raises(InvalidDecisionError) as refused:
        await api.client.decide(
            run_id, DecisionInput.model_validate({**decision, "approver": api.approver_name})
        )
    response = await api.http.post(
        "/hitl/approve", headers=api.auth(api.approver), json={"run_id": run_id, **decision}
    )
    assert response.status_code == 409
    assert response.json() == {"detail": str(refused.value)}


async def test_the_roster_applies_to_the_tokens_identity(api: Api) -> None:
    run_id = await _kickoff(api, roster={"founder": ["carol"]})
    await wait_for_checkpoint(api.client, run_id, FIRST)
    response = await api.http.post(
        "/hitl/approve", headers=api.auth(api.approver), json={"run_id": run_id, "checkpoint": FIRST}
    )
    assert response.status_code == 409
    with pytest.raises(InvalidDecisionError) as refused:
        await api.client.decide(run_id, DecisionInput(checkpoint=FIRST, approver=api.approver_name))
    assert response.json()["detail"] == str(refused.value)
    assert api.approver_name in str(refused.value)


async def test_the_body_cannot_name_the_approver_or_the_tenant(api: Api) -> None:
    for path, body in (
        ("/hitl/approve", {"run_id": "r", "checkpoint": FIRST, "approver": "mallory"}),
        ("/kickoff", {"project_id": "p", "brief": BRIEF, "tenant": "someone-else"}),
    ):
        response = await api.http.post(path, headers=api.auth(api.approver), json=body)
        assert response.status_code == 422, response.text


async def test_health_needs_no_token(api: Api) -> None:
    response = await api.http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "temporal": True, "database": True}
