"""API bearer tokens, one tenant and one role each, stored as a SHA-256 only.

A token reads `bmr_<prefix>_<secret>`: the prefix is public (it finds the row and
names the token in lists and logs), the secret is 256 random bits. A fast hash is
enough for a random secret of that size (nothing to brute-force, unlike a
password), and the stored hash is compared with `hmac.compare_digest`.

    issued = await create_token(pool, tenant="acme", role=ApiRole.APPROVER, name="alice")
    print(issued.token.get_secret_value())          # shown once, never stored
    principal = await authenticate(pool, presented)  # None: unknown or revoked
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, SecretStr

from boomerang.store.errors import StoreError
from boomerang.store.pg_values import pg_text

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
TOKEN_PREFIX = "bmr_"  # noqa: S105  # a marker, not a secret: scanners spot leaked tokens by it
_TOKEN = re.compile(r"^bmr_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,199}$")
# Compared against when the prefix is unknown, so both paths do the same work.
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()


class ApiRole(StrEnum):
    APPROVER = "approver"  # may start runs and decide checkpoints
    VIEWER = "viewer"  # may read status, approvals and the Charter


class TokenError(StoreError):
    """A token request was refused (a name already in use, a malformed name)."""


class ApiToken(BaseModel):
    """Who a token speaks for; never holds the token itself."""

    model_config = ConfigDict(frozen=True)

    prefix: str
    tenant: str
    name: str
    role: ApiRole
    created_at: datetime
    revoked_at: datetime | None = None


class IssuedToken(BaseModel):
    model_config = ConfigDict(frozen=True)

    token: SecretStr
    info: ApiToken


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str | None:
    """The public part of a well-formed token, else None."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


_COLUMNS = "prefix, tenant, name, role, created_at, revoked_at"


async def create_token(pool: Pool, *, tenant: str, role: ApiRole, name: str | None = None) -> IssuedToken:
    """A new token; its secret is returned here once and never again."""
    if not tenant or len(tenant) > 200:
        raise TokenError("a tenant of 1 to 200 characters is required")
    prefix = secrets.token_hex(6)
    name = name or f"token-{prefix}"
    if not _NAME.match(name):
        raise TokenError(f"token name {name!r}: letters, digits and _.@+- only, up to 200 characters")
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    try:
        async with pool.connection() as conn, conn.cursor(row_factory=class_row(ApiToken)) as cur:
            await cur.execute(
                f"INSERT INTO api_tokens (prefix, token_hash, tenant, name, role) VALUES (%s, %s, %s, %s, %s)"  # noqa: S608
                f" RETURNING {_COLUMNS}",
                (prefix, token_hash(token), pg_text(tenant), name, role.value),
            )
            info = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise TokenError(f"tenant {tenant!r} already has a live token named {name!r}") from None
    assert info is not None  # INSERT ... RETURNING yields the row
    return IssuedToken(token=SecretStr(token), info=info)


async def revoke_token(pool: Pool, *, tenant: str, name_or_prefix: str) -> list[ApiToken]:
    """Revoke the tenant's live tokens with that name or prefix; returns what was revoked."""
    async with pool.connection() as conn, conn.cursor(row_factory=class_row(ApiToken)) as cur:
        await cur.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE tenant = %s AND revoked_at IS NULL"  # noqa: S608
            f" AND (name = %s OR prefix = %s) RETURNING {_COLUMNS}",
            (pg_text(tenant), pg_text(name_or_prefix), pg_text(name_or_prefix)),
        )
        return await cur.fetchall()


async def list_tokens(pool: Pool, *, tenant: str | None = None) -> list[ApiToken]:
    async with pool.connection() as conn, conn.cursor(row_factory=class_row(ApiToken)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE %(t)s::text IS NULL OR tenant = %(t)s"  # noqa: S608
            " ORDER BY tenant, created_at",
            {"t": None if tenant is None else pg_text(tenant)},
        )
        return await cur.fetchall()


async def authenticate(pool: Pool, token: str) -> ApiToken | None:
    """The live token matching `token`, or None (malformed, unknown or revoked)."""
    prefix = token_prefix(token)
    row = None
    if prefix is not None:
        async with pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT token_hash, {_COLUMNS} FROM api_tokens WHERE prefix = %s",  # noqa: S608
                (prefix,),
            )
            row = await cur.fetchone()
    stored = str(row[0]) if row is not None else _DUMMY_HASH
    if not hmac.compare_digest(token_hash(token), stored) or row is None or row[6] is not None:
        return None
    return ApiToken(
        prefix=row[1], tenant=row[2], name=row[3], role=ApiRole(row[4]), created_at=row[5], revoked_at=row[6]
    )
