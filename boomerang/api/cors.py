"""CORS for browser front ends: listed origins only, and nothing at all for the others.

Starlette's `CORSMiddleware` sends `Access-Control-Allow-Credentials` (and the other
simple headers) to every origin and leaves the refusal to the missing
`Access-Control-Allow-Origin`. Here an origin that is not listed gets no CORS header
of any kind, so no grant is ever spelt out to it; a listed one gets the whole set.

    app.add_middleware(ListedOriginsCORS, origins=("https://app.example.com",))
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class ListedOriginsCORS(CORSMiddleware):
    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        if not origins or "*" in origins:
            raise ValueError("ListedOriginsCORS needs explicit origins, never '*'")
        super().__init__(
            app,
            allow_origins=list(origins),
            allow_credentials=True,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Location"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self.is_allowed_origin(origin):
                if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                    refused = PlainTextResponse("Disallowed CORS origin", status_code=400)
                    await refused(scope, receive, send)
                    return
                await self.app(scope, receive, send)  # served; the browser keeps it from the page
                return
        await super().__call__(scope, receive, send)
