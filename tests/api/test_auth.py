"""Bearer tokens: 401 without a good token, 403 in the wrong role, 404 for another tenant's run."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from boomerang.store.queries import Pool
from boomerang.store.tokens import ApiRole, create_token, list_tokens, revoke_token
from tests.api import Api, api_fixture, make_token  # noqa: F401  (the `api` fixture)
from tests.helpers import BRIEF, wait_for_checkpoint

APPROVE = {"run_id": "vp-nothing-00000000", "checkpoint": "approve_founders_brief"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "Token bmr_0123456789ab_xxx",
        "Bearer",
        "Bearer    ",
    ],
)
async def test_missing_token_or_another_scheme_is_401(api: Api, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in (("GET", "/approvals"), ("GET", "/status/x"), ("POST", "/hitl/approve")):
        response = await api.http.request(method, path, headers=headers, json=APPROVE)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "token",
    [
        "bmr_0123456789ab_" + "A" * 43,  # well-formed, never issued
        "not-a-boomerang-token",
        "bmr_zz",
    ],
)
async def test_unknown_tokens_are_401(api: Api, token: str) -> None:
    response = await api.http.get("/approvals", headers=api.auth(token))
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid or revoked token"}


async def test_a_tampered_token_is_401(api: Api) -> None:
    tampered = api.approver[:-1] + ("A" if api.approver[-1] != "A" else "B")
    assert (await api.http.get("/approvals", headers=api.auth(tampered))).status_code == 401


async def test_a_revoked_token_is_401(api: Api, store_pool: Pool) -> None:
    token = await make_token(store_pool, api.tenant, ApiRole.VIEWER, "short-lived")
    assert (await api.http.get("/approvals", headers=api.auth(token))).status_code == 200
    revoked = await revoke_token(store_pool, tenant=api.tenant, name_or_prefix="short-lived")
    assert [t.name for t in revoked] == ["short-lived"]
    assert (await api.http.get("/approvals", headers=api.auth(token))).status_code == 401


async def test_a_viewer_may_read_but_not_decide_or_kick_off(api: Api) -> None:
    viewer = api.auth(api.viewer)
    assert (await api.http.get("/approvals", headers=viewer)).status_code == 200
    refused = await api.http.post("/hitl/approve", headers=viewer, json=APPROVE)
    assert refused.status_code == 403 and "approver" in refused.json()["detail"]
    kickoff = await api.http.post("/kickoff", headers=viewer, json={"project_id": "p", "brief": BRIEF})
    assert kickoff.status_code == 403


async def test_another_tenants_run_is_404_like_a_missing_one(api: Api) -> None:
    started = await api.http.post(
        "/kickoff", headers=api.auth(api.approver), json={"project_id": "clinic", "brief": BRIEF}
    )
    assert started.status_code == 202
    run_id = started.json()["run_id"]
    await wait_for_checkpoint(api.client, run_id, "approve_founders_brief")

    stranger = api.auth(api.stranger)
    for run in (run_id, "vp-no-such-run-00000000"):
        for method, path, body in (
            ("GET", f"/status/{run}", None),
            ("GET", f"/runs/{run}/charter", None),
            ("POST", "/hitl/approve", {"run_id": run, "checkpoint": "approve_founders_brief"}),
        ):
            response = await api.http.request(method, path, headers=stranger, json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json() == {"detail": f"no run {run!r}"}
    # ... and nothing was decided on the owner's run.
    assert (await api.client.status(run_id)).decisions == ()
    assert (await api.http.get(f"/status/{run_id}", headers=api.auth(api.viewer))).status_code == 200


async def test_tokens_are_stored_hashed_and_never_logged(api: Api, store_pool: Pool) -> None:
    with capture_logs() as logs:
        issued = await create_token(store_pool, tenant=api.tenant, role=ApiRole.APPROVER, name="logged")
        token = issued.token.get_secret_value()
        for headers in (api.auth(token), {"Authorization": f"Basic {token}"}, api.auth(token + "x")):
            await api.http.get("/approvals", headers=headers)
        await api.http.post("/hitl/approve", headers=api.auth(token), json=APPROVE)
    assert logs, "the API should log its requests"
    assert token not in repr(logs)
    # Not even the secret part alone (it is base64url, so it may itself contain "_").
    assert token.split("_", 2)[2] not in repr(logs)
    assert any(entry.get("status") == 401 for entry in logs)

    async with store_pool.connection() as conn:
        cur = await conn.execute("SELECT * FROM api_tokens WHERE prefix = %s", (issued.info.prefix,))
        row = await cur.fetchone()
    assert row is not None and token not in repr(row)
    assert token not in repr(issued) and token not in repr(await list_tokens(store_pool, tenant=api.tenant))
