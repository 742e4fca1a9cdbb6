"""Bearer tokens: who is calling, for which tenant, in which role.

Missing header or another scheme -> 401; a token that is malformed, unknown or
revoked -> 401 (the same answer, so probing learns nothing); the right token in
the wrong role -> 403. The token itself is never logged: only its public prefix.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from boomerang.api.deps import ApiContext, context
from boomerang.store.tokens import ApiRole, ApiToken, authenticate, token_prefix

log = structlog.get_logger(__name__)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="boomerang"'}
# Declares the scheme in OpenAPI; the header is parsed below for precise answers.
_bearer = HTTPBearer(auto_error=False, description="A token from `boomerang tokens create`.")


def _refuse(reason: str, detail: str, **fields: object) -> HTTPException:
    log.info("api auth refused", reason=reason, **fields)
    return HTTPException(401, detail, headers=_CHALLENGE)


async def caller(
    request: Request,
    ctx: Annotated[ApiContext, Depends(context)],
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    header = request.headers.get("authorization")
    if not header:
        raise _refuse("missing", "missing Authorization header (use: Bearer <token>)")
    scheme, _, presented = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise _refuse("scheme", "Authorization must use the Bearer scheme")
    presented = presented.strip()
    token = await authenticate(ctx.pool, presented)
    if token is None:
        raise _refuse("unknown", "invalid or revoked token", token_prefix=token_prefix(presented))
    request.state.tenant = token.tenant
    return token


async def approver(token: Annotated[ApiToken, Depends(caller)]) -> ApiToken:
    if token.role is not ApiRole.APPROVER:
        log.info("api auth refused", reason="role", token_prefix=token.prefix, role=token.role.value)
        raise HTTPException(403, f"this token's role is {token.role.value}; this needs approver")
    return token


Caller = Annotated[ApiToken, Depends(caller)]
Approver = Annotated[ApiToken, Depends(approver)]
