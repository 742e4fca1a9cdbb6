"""Registered webhook endpoints and their signing secrets (`whsec_…` per endpoint).

    endpoint, secret = await register_endpoint(pool, tenant="acme", url=url)   # secret shown once
    secret = await rotate_secret(pool, tenant="acme", url=url, overlap=timedelta(hours=24))
    secrets = await EndpointStore(pool).active_secrets(tenant="acme", url=url)  # newest first

During a rotation's overlap every delivery is signed with the old and the new
secret (one `webhook-signature` entry each), so a receiver may switch whenever it
likes within the window; after it, only the new one signs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict

from boomerang.errors import BoomerangError
from boomerang.webhooks.signing import generate_secret

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


class EndpointError(BoomerangError):
    """No such endpoint, or it is registered already."""


class Endpoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    tenant: str
    url: str
    created_at: datetime
    secrets: int = 0
    next_expiry: datetime | None = None


_LIST = """
SELECT e.id, e.tenant, e.url, e.created_at,
       count(s.id) FILTER (WHERE s.expires_at IS NULL OR s.expires_at > now())::int AS secrets,
       min(s.expires_at) FILTER (WHERE s.expires_at > now()) AS next_expiry
FROM webhook_endpoints e LEFT JOIN webhook_endpoint_secrets s ON s.endpoint_id = e.id
WHERE e.disabled_at IS NULL AND (%(tenant)s::text IS NULL OR e.tenant = %(tenant)s)
GROUP BY e.id ORDER BY e.tenant, e.url
"""


async def register_endpoint(pool: Pool, *, tenant: str, url: str) -> tuple[Endpoint, str]:
    """A new endpoint with its first secret; the secret is returned once, to be printed once."""
    secret = generate_secret()
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "INSERT INTO webhook_endpoints (tenant, url) VALUES (%s, %s) ON CONFLICT DO NOTHING"
            " RETURNING id, created_at",
            (tenant, url),
        )
        row = await cur.fetchone()
        if row is None:
            raise EndpointError(
                f"{url} is already registered for tenant {tenant!r}; rotate its secret instead"
            )
        await conn.execute(
            "INSERT INTO webhook_endpoint_secrets (endpoint_id, secret) VALUES (%s, %s)", (row[0], secret)
        )
    return Endpoint(id=row[0], tenant=tenant, url=url, created_at=row[1], secrets=1), secret


async def rotate_secret(pool: Pool, *, tenant: str, url: str, overlap: timedelta) -> str:
    """A new current secret; the previous ones keep signing for `overlap` (0: stop at once)."""
    if overlap < timedelta(0):
        raise ValueError(f"overlap must not be negative, got {overlap}")
    secret = generate_secret()
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT id FROM webhook_endpoints WHERE tenant = %s AND url = %s AND disabled_at IS NULL"
            " FOR UPDATE",
            (tenant, url),
        )
        row = await cur.fetchone()
        if row is None:
            raise EndpointError(f"no endpoint {url} for tenant {tenant!r}")
        await conn.execute(
            "UPDATE webhook_endpoint_secrets SET expires_at = now() + %s"
            " WHERE endpoint_id = %s AND (expires_at IS NULL OR expires_at > now() + %s)",
            (overlap, row[0], overlap),
        )
        await conn.execute(
            "INSERT INTO webhook_endpoint_secrets (endpoint_id, secret) VALUES (%s, %s)", (row[0], secret)
        )
    return secret


async def list_endpoints(pool: Pool, *, tenant: str | None = None) -> list[Endpoint]:
    async with pool.connection() as conn, conn.cursor(row_factory=class_row(Endpoint)) as cur:
        await cur.execute(_LIST, {"tenant": tenant})
        return await cur.fetchall()


class EndpointStore:
    """What the delivery activity reads: the secrets that sign for an endpoint now."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def active_secrets(self, *, tenant: str, url: str) -> list[str] | None:
        """Newest first; None when the URL is not a registered endpoint of the tenant."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT s.secret FROM webhook_endpoints e"
                " LEFT JOIN webhook_endpoint_secrets s ON s.endpoint_id = e.id"
                "  AND (s.expires_at IS NULL OR s.expires_at > now())"
                " WHERE e.tenant = %s AND e.url = %s AND e.disabled_at IS NULL"
                " ORDER BY s.created_at DESC, s.id DESC",
                (tenant, url),
            )
            rows = await cur.fetchall()
        if not rows:
            return None
        return [str(r[0]) for r in rows if r[0] is not None]
