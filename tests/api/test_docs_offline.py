"""`/docs` and `/redoc` work without the internet: every script and style comes from the app."""

from __future__ import annotations

import re
from typing import Any, cast

import httpx
import pytest

from boomerang.api import create_app
from boomerang.client import BoomerangClient
from boomerang.settings import Settings

# The pages touch neither Temporal nor Postgres: stand-ins that fail if they are used.
_APP = create_app(client=cast(BoomerangClient, object()), pool=cast(Any, object()), settings=Settings())


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_their_assets_from_the_app_itself(page: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_APP), base_url="http://api") as http:
        html = (await http.get(page)).text
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), html  # no CDN, no fonts
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert assets, html
        for asset in assets:
            response = await http.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 100, asset
        assert (await http.get("/openapi.json")).status_code == 200
