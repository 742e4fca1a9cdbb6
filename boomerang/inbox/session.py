"""Signing in to the inbox: the API token in an HTTP-only cookie, and CSRF on every form.

The cookie holds the token itself (HTTP-only, SameSite=Strict, Secure behind https),
so revoking the token signs its holder out at once and nothing else has to be
stored. Every form carries a CSRF value: after sign-in an HMAC of a fixed label
keyed by the token (a page on another site can neither read the cookie nor compute
it); on the sign-in form, a random value that must match a cookie of its own
(double submit). The approver is always the token's name, never a form field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from boomerang.api.deps import ApiContext, context
from boomerang.errors import BoomerangError
from boomerang.store.tokens import ApiRole, ApiToken, authenticate

SESSION_COOKIE = "boomerang_session"
LOGIN_CSRF_COOKIE = "boomerang_login_csrf"
_CSRF_LABEL = b"boomerang inbox csrf v1"


class SignInRequired(BoomerangError):
    """No valid session: the page answers with a redirect to the sign-in form."""


class Session:
    """A signed-in person: who (the token's name), for which tenant, in which role."""

    def __init__(self, token: ApiToken, secret: str) -> None:
        self.token = token
        self.csrf = csrf_for(secret)

    @property
    def may_decide(self) -> bool:
        return self.token.role is ApiRole.APPROVER

    def check_csrf(self, presented: str) -> None:
        if not hmac.compare_digest(presented.encode(), self.csrf.encode()):
            raise HTTPException(403, "this form has expired or did not come from the inbox; reload the page")


def csrf_for(secret: str) -> str:
    return hmac.new(secret.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def login_csrf_matches(request: Request, presented: str) -> bool:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())


def cookie_secure(request: Request) -> bool:
    """Secure cookies whenever the page was served over https."""
    return request.url.scheme == "https"


async def session(request: Request, ctx: Annotated[ApiContext, Depends(context)]) -> Session:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise SignInRequired
    token = await authenticate(ctx.pool, secret)
    if token is None:
        raise SignInRequired
    request.state.tenant = token.tenant
    return Session(token, secret)


SignedIn = Annotated[Session, Depends(session)]
