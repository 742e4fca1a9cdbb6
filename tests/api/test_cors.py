"""CORS: none by default; listed origins only, with credentials; never a wildcard."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from boomerang.api import create_app
from boomerang.client import BoomerangClient
from boomerang.settings import Settings
from boomerang.store.queries import Pool
from boomerang.store.tokens import ApiRole
from tests.api import make_token

ALLOWED = "https://app.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}


def _http(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://boomerang.test")  # type: ignore[arg-type]


async def test_no_origins_no_cors_headers(dev_env: WorkflowEnvironment, store_pool: Pool) -> None:
    app = create_app(client=BoomerangClient(dev_env.client), pool=store_pool, settings=Settings())
    token = await make_token(store_pool, "cors-none", ApiRole.VIEWER)
    async with _http(app) as http:
        got = await http.get(
            "/webhooks/dead-letters", headers={"Origin": ALLOWED, "Authorization": f"Bearer {token}"}
        )
        preflight = await http.options("/kickoff", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert got.status_code == 200
    assert not [h for h in got.headers if h.startswith("access-control-")]
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


async def test_listed_origin_gets_credentials_and_others_get_nothing(
    dev_env: WorkflowEnvironment, store_pool: Pool
) -> None:
    settings = Settings(api_cors_origins=(ALLOWED, "http://localhost:3000"))
    app = create_app(client=BoomerangClient(dev_env.client), pool=store_pool, settings=settings)
    token = await make_token(store_pool, "cors-listed", ApiRole.VIEWER)
    auth = {"Authorization": f"Bearer {token}"}
    async with _http(app) as http:
        preflight = await http.options("/kickoff", headers={"Origin": ALLOWED, **PREFLIGHT})
        allowed = await http.get("/webhooks/dead-letters", headers={"Origin": ALLOWED, **auth})
        other = await http.get("/webhooks/dead-letters", headers={"Origin": "https://evil.example", **auth})
        other_preflight = await http.options(
            "/kickoff", headers={"Origin": "https://evil.example", **PREFLIGHT}
        )

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "location" in allowed.headers["access-control-expose-headers"].lower()
    # Another origin: the request is served (CORS is the browser's check), with no grant.
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-credentials" not in other.headers
    assert other_preflight.status_code == 400
    assert "access-control-allow-origin" not in other_preflight.headers


def test_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOMERANG_API_CORS_ORIGINS", "https://app.example.com/, http://localhost:3000")
    assert Settings().api_cors_origins == ("https://app.example.com", "http://localhost:3000")
    monkeypatch.setenv("BOOMERANG_API_CORS_ORIGINS", '["https://app.example.com"]')
    assert Settings().api_cors_origins == ("https://app.example.com",)
    monkeypatch.delenv("BOOMERANG_API_CORS_ORIGINS")
    assert Settings().api_cors_origins == ()
    for bad, says in [("*", "'*' is not allowed"), ("app.example.com", "is not an origin"),
                      ("https://app.example.com/path", "is not an origin")]:  # fmt: skip
        monkeypatch.setenv("BOOMERANG_API_CORS_ORIGINS", bad)
        with pytest.raises(ValidationError, match=says):
            Settings()
