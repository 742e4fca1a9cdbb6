"""The inbox over HTTP: sign-in, what it lists, deciding through its forms, exactly once."""

from __future__ import annotations

import httpx

from boomerang.models.decisions import RunStatus
from tests.api import Api, api_fixture  # noqa: F401  (the `api` fixture)
from tests.helpers import BRIEF, wait_for_checkpoint, wait_until
from tests.inbox.pages import decision_form, result_of, sign_in

FIRST = "approve_founders_brief"
SECOND = "approve_customer_profile"


async def _kickoff(api: Api, project: str = "clinic") -> str:
    response = await api.http.post(
        "/kickoff", headers=api.auth(api.approver), json={"project_id": project, "brief": BRIEF}
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    await wait_for_checkpoint(api.client, run_id, FIRST)
    return run_id


async def _form(http: httpx.AsyncClient, run_id: str, checkpoint: str) -> tuple[dict[str, str], list[str]]:
    async def shown() -> tuple[dict[str, str], list[str]] | None:
        return decision_form((await http.get("/inbox")).text, run_id, checkpoint)

    return await wait_until(shown, what=f"{checkpoint} of {run_id} in the inbox")


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


async def test_signed_out_goes_to_the_sign_in_form(api: Api) -> None:
    api.http.cookies.clear()
    assert (await api.http.get("/")).headers["location"] == "/inbox"
    page = await api.http.get("/inbox?project=x")
    assert page.status_code == 303
    assert page.headers["location"] == "/inbox/login?next=%2Finbox%3Fproject%3Dx"
    # A sign-in without the form's CSRF value, and one with a bad token.
    refused = await api.http.post("/inbox/login", data={"token": api.approver, "csrf": "forged"})
    assert refused.status_code == 403
    login = await api.http.get("/inbox/login")
    csrf = login.cookies["boomerang_login_csrf"]
    bad = await api.http.post("/inbox/login", data={"token": "bmr_nope", "csrf": csrf})
    assert bad.status_code == 401 and "not valid" in bad.text
    await sign_in(api.http, api.approver)
    cookie = next(c for c in api.http.cookies.jar if c.name == "boomerang_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "strict"


async def test_approve_from_the_inbox_once_and_see_the_next_checkpoint(api: Api) -> None:
    run_id = await _kickoff(api)
    await sign_in(api.http, api.approver)
    fields, buttons = await _form(api.http, run_id, FIRST)
    assert buttons == ["approve", "reject", "iterate"]  # exactly the checkpoint's options
    assert fields["opening"] == "1" and fields["decision_id"].startswith("inbox-")

    body = {**fields, "decision": "approve", "comment": "clear brief"}
    first = await api.http.post("/inbox/decide", data=body)
    assert first.status_code == 200 and result_of(first.text) == ("applied", "Accepted: Decision recorded.")
    again = await api.http.post("/inbox/decide", data=body)  # the same form, sent twice
    assert again.status_code == 200 and result_of(again.text)[0] == "duplicate"

    status = await wait_for_checkpoint(api.client, run_id, SECOND)
    [decision] = status.decisions
    assert (decision.approver, decision.comment, decision.decision_id) == (
        api.approver_name, "clear brief", fields["decision_id"],
    )  # fmt: skip
    await _form(api.http, run_id, SECOND)

    # A stale form (the checkpoint was decided since it was rendered) is refused with the run's reason.
    stale = await api.http.post("/inbox/decide", data={**body, "decision_id": "inbox-other"})
    assert stale.status_code == 409
    shown, text = result_of(stale.text)
    assert shown == "refused" and FIRST in text and "not pending" in text

    run_page = await api.http.get(f"/inbox/runs/{run_id}")
    assert run_page.status_code == 200
    assert api.approver_name in run_page.text and "checkpoint_decided" in run_page.text
    assert (
        "clear brief" in run_page.text
        and (await api.client.status(run_id)).status is RunStatus.AWAITING_APPROVAL
    )


async def test_a_viewer_sees_but_cannot_decide(api: Api) -> None:
    run_id = await _kickoff(api)
    await sign_in(api.http, api.approver)
    fields, _ = await _form(api.http, run_id, FIRST)
    await sign_in(api.http, api.viewer)
    page = await api.http.get("/inbox")
    assert run_id in page.text and "viewer token" in page.text
    assert decision_form(page.text, run_id, FIRST) is None
    viewer = {**fields, "csrf": _csrf(page.text), "decision": "approve"}
    refused = await api.http.post("/inbox/decide", data=viewer)
    assert refused.status_code == 403 and result_of(refused.text)[0] == "refused"
    assert (await api.client.status(run_id)).decisions == ()


async def test_forms_need_csrf_and_other_tenants_runs_are_invisible(api: Api) -> None:
    run_id = await _kickoff(api)
    await sign_in(api.http, api.approver)
    fields, _ = await _form(api.http, run_id, FIRST)
    forged = await api.http.post("/inbox/decide", data={**fields, "csrf": "x" * 64, "decision": "approve"})
    assert forged.status_code == 403

    await sign_in(api.http, api.stranger)
    assert run_id not in (await api.http.get("/inbox")).text
    assert (await api.http.get(f"/inbox/runs/{run_id}")).status_code == 404
    stranger = {**fields, "csrf": _csrf((await api.http.get("/inbox")).text), "decision": "approve"}
    taken = await api.http.post("/inbox/decide", data=stranger)
    assert taken.status_code == 404
    assert (await api.client.status(run_id)).decisions == ()


async def test_an_approver_sees_only_the_checkpoints_the_runs_roster_lets_them_decide(api: Api) -> None:
    async def kickoff(roster: dict[str, list[str]]) -> str:
        body = {"project_id": "clinic", "brief": BRIEF, "roster": roster}
        response = await api.http.post("/kickoff", headers=api.auth(api.approver), json=body)
        assert response.status_code == 202, response.text
        run_id: str = response.json()["run_id"]
        await wait_for_checkpoint(api.client, run_id, FIRST)
        return run_id

    mine = await kickoff({"founder": [api.approver_name]})
    theirs = await kickoff({"founder": ["someone-else"]})
    await sign_in(api.http, api.approver)
    await _form(api.http, mine, FIRST)
    page = (await api.http.get("/inbox")).text
    assert decision_form(page, theirs, FIRST) is None and theirs not in page
    # The status names who may decide, for every door that shows a checkpoint.
    status = await api.client.status(theirs)
    assert [cp.deciders for cp in status.pending] == [("someone-else",)]
