"""The approvals inbox: server-rendered pages over the HTTP API (`/inbox`).

    install_inbox(app)   # in create_app: the pages, their static files, the sign-in redirect

No build step and no CDN: the templates and the stylesheet ship in this package and
are served by the app itself.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from boomerang.inbox.routes import router, sign_in_redirect
from boomerang.inbox.session import SignInRequired


def install_inbox(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/inbox/static", StaticFiles(directory=Path(__file__).parent / "static"), name="inbox-static")

    async def signed_out(request: Request, exc: Exception) -> Response:
        return sign_in_redirect(request)

    app.add_exception_handler(SignInRequired, signed_out)


__all__ = ["install_inbox"]
