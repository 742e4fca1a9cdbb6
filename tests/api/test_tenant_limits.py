"""What a tenant may not set through the API: operator test hooks and a heartbeat below the floor."""

from __future__ import annotations

from typing import Any

from boomerang.pipelines import startup_validation_pipeline
from tests.api import Api, api_fixture  # noqa: F401  (the `api` fixture)
from tests.helpers import BRIEF


async def _kickoff(api: Api, **body: Any) -> tuple[int, str]:
    response = await api.http.post(
        "/kickoff", headers=api.auth(api.approver), json={"project_id": "p", "brief": BRIEF, **body}
    )
    return response.status_code, response.text


async def test_a_tenant_cannot_set_test_hooks_or_a_heartbeat_below_the_floor(api: Api) -> None:
    spec = startup_validation_pipeline().model_dump(mode="json")
    spec["phases"][1]["heartbeat_timeout"] = 1
    hook = await _kickoff(api, context={"work_seconds": 600})
    beat = await _kickoff(api, spec=spec)
    typo = await _kickoff(api, spec={**startup_validation_pipeline().model_dump(mode="json"), "max_pivot": 1})

    assert hook[0] == 422 and "work_seconds: reserved for operators" in hook[1]
    assert beat[0] == 422 and "phase vpc_discovery: heartbeat_timeout must be at least 10s" in beat[1]
    assert typo[0] == 422 and "unknown fields: max_pivot" in typo[1]
