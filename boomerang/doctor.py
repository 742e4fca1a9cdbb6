"""`boomerang doctor` and `boomerang setup`: check a configuration before it is used, and fix what can be.

    results = await run_checks(settings)        # one Check per line, each with its fix
    await setup(settings)                       # search attributes + migrations

Each check says what it looked at and, when it fails, the command or setting that
fixes it; `doctor` exits non-zero when any check fails. Warnings (a webhook secret
not set, a Modal app that cannot be looked up from here) do not fail it.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

import psycopg
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from boomerang.connect import connect_temporal
from boomerang.constants import SEARCH_ATTRIBUTES
from boomerang.pricing import load_price_table
from boomerang.settings import ComputeBackendName, Settings
from boomerang.store.migrate import apply_migrations, load_migrations
from boomerang.webhooks.signing import WebhookSigner

ROLES = ("boomerang_writer", "boomerang_customer")
_TIMEOUT = timedelta(seconds=5)
_TYPE_NAMES = {"KEYWORD": "Keyword", "KEYWORD_LIST": "KeywordList", "TEXT": "Text", "INT": "Int"}


class Outcome(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    outcome: Outcome
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        head = f"{self.outcome.value:<4}  {self.name:<26} {self.detail}"
        return [head, f"      fix: {self.fix}"] if self.fix and self.outcome is not Outcome.OK else [head]


def _sa_flags() -> str:
    return " ".join(
        f"--name {k.name} --type {_TYPE_NAMES[k.indexed_value_type.name]}" for k in SEARCH_ATTRIBUTES
    )


async def _temporal_checks(settings: Settings) -> tuple[list[Check], Client | None]:
    where = f"{settings.temporal_address} namespace {settings.temporal_namespace}"
    try:
        client = await asyncio.wait_for(connect_temporal(settings), _TIMEOUT.total_seconds())
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.temporal_namespace), timeout=_TIMEOUT
        )
    except Exception as exc:  # any failure to reach or authenticate is this check's failure
        reason = str(exc).splitlines()[0][:200] or type(exc).__name__
        return [
            Check(
                "temporal.reachable",
                Outcome.FAIL,
                f"{where}: {reason}",
                "set BOOMERANG_TEMPORAL_ADDRESS / _NAMESPACE, and _API_KEY (Temporal Cloud) or "
                "_TLS_CERT + _TLS_KEY (mTLS); the namespace must exist",
            )
        ], None
    checks = [Check("temporal.reachable", Outcome.OK, where)]
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=settings.temporal_namespace), timeout=_TIMEOUT
        )
        have = dict(listed.custom_attributes)
    except Exception as exc:  # Temporal Cloud refuses the operator API to namespace keys
        checks.append(
            Check("temporal.search_attributes", Outcome.WARN, f"cannot list them here ({exc})"[:200])
        )
        return checks, client
    missing = [
        k.name
        for k in SEARCH_ATTRIBUTES
        if have.get(k.name) != IndexedValueType.ValueType(k.indexed_value_type.value)
    ]
    if missing:
        checks.append(
            Check(
                "temporal.search_attributes",
                Outcome.FAIL,
                f"missing or of another type: {', '.join(missing)}",
                f"boomerang setup (self-hosted), or: tcld namespace search-attributes add "
                f"--namespace {settings.temporal_namespace} {_sa_flags()} (Temporal Cloud)",
            )
        )
    else:
        checks.append(
            Check("temporal.search_attributes", Outcome.OK, ", ".join(k.name for k in SEARCH_ATTRIBUTES))
        )
    return checks, client


async def _postgres_checks(conninfo: str | None) -> list[Check]:
    if conninfo is None:
        return [Check("postgres.reachable", Outcome.FAIL, "DATABASE_URL is not set", "set DATABASE_URL")]
    try:
        async with await psycopg.AsyncConnection.connect(conninfo, connect_timeout=5) as conn:
            version = (await (await conn.execute("SHOW server_version")).fetchone() or ("?",))[0]
            cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            has_table = bool((await cur.fetchone() or (False,))[0])
            applied: set[int] = set()
            if has_table:
                rows = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
                applied = {int(r[0]) for r in rows}
            rows = await (
                await conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(ROLES),))
            ).fetchall()
            roles = {str(r[0]) for r in rows}
    except psycopg.Error as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return [
            Check(
                "postgres.reachable", Outcome.FAIL, reason, "check DATABASE_URL and that the server answers"
            )
        ]
    checks = [Check("postgres.reachable", Outcome.OK, f"PostgreSQL {version}")]
    pending = [m.name for m in load_migrations() if m.version not in applied]
    if pending:
        checks.append(
            Check(
                "postgres.migrations",
                Outcome.FAIL,
                f"pending: {', '.join(pending)}",
                "boomerang setup (or boomerang migrate)",
            )
        )
    else:
        checks.append(Check("postgres.migrations", Outcome.OK, f"{len(applied)} applied"))
    lacking = [r for r in ROLES if r not in roles]
    checks.append(
        Check(
            "postgres.roles",
            Outcome.FAIL,
            f"missing: {', '.join(lacking)}",
            "boomerang setup (migration 0004 creates them)",
        )
        if lacking
        else Check("postgres.roles", Outcome.OK, ", ".join(ROLES))
    )
    return checks


def _modal_token_present() -> bool:
    if os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET"):
        return True
    return Path(os.environ.get("MODAL_CONFIG_PATH", Path.home() / ".modal.toml")).is_file()


async def _compute_checks(settings: Settings) -> list[Check]:
    if settings.compute_backend is ComputeBackendName.LOCAL:
        return [Check("compute.backend", Outcome.OK, "local (functions run in this worker's processes)")]
    if not _modal_token_present():
        return [
            Check(
                "compute.modal_token",
                Outcome.FAIL,
                "no MODAL_TOKEN_ID/MODAL_TOKEN_SECRET and no ~/.modal.toml",
                "create a token (modal token new) and put it in the worker's Secret",
            )
        ]
    checks = [Check("compute.modal_token", Outcome.OK, "present")]
    environment = os.environ.get("MODAL_ENVIRONMENT") or "the default environment"
    try:
        import modal

        fn = modal.Function.from_name(settings.modal_app_name, "phase_0_onboarding")
        await asyncio.wait_for(fn.hydrate.aio(), 10)
    except Exception as exc:  # unreachable from here, or not deployed: say which we saw
        text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        checks.append(
            Check(
                "compute.modal_app",
                Outcome.WARN,
                f"{settings.modal_app_name} in {environment}: {text}",
                f"MODAL_ENVIRONMENT={os.environ.get('MODAL_ENVIRONMENT', 'main')} "
                "modal deploy modal_app/app.py",
            )
        )
    else:
        checks.append(
            Check("compute.modal_app", Outcome.OK, f"{settings.modal_app_name} deployed in {environment}")
        )
    return checks


def _webhook_check(settings: Settings) -> Check:
    if settings.webhook_secret is None:
        return Check(
            "webhooks.secret",
            Outcome.WARN,
            "not set: no webhooks are sent, compute callbacks are refused",
            "set BOOMERANG_WEBHOOK_SECRET=whsec_<base64 of 24-64 random bytes>",
        )
    try:
        WebhookSigner.from_secret(settings.webhook_secret)
    except ValueError as exc:
        return Check(
            "webhooks.secret", Outcome.FAIL, str(exc)[:200], "BOOMERANG_WEBHOOK_SECRET=whsec_<base64>"
        )
    return Check("webhooks.secret", Outcome.OK, "well-formed (whsec_...)")


def _price_check(settings: Settings) -> Check:
    try:
        table = load_price_table(settings.price_table, env={})
    except Exception as exc:  # a missing file or a table that does not validate
        return Check(
            "prices.table",
            Outcome.FAIL,
            f"{settings.price_table}: {str(exc).splitlines()[0][:200]}",
            "point BOOMERANG_PRICE_TABLE at a valid table (see boomerang/prices/)",
        )
    return Check("prices.table", Outcome.OK, f"version {table.version}")


async def run_checks(settings: Settings, *, conninfo: str | None = None) -> list[Check]:
    """Every check; `conninfo` defaults to DATABASE_URL."""
    if conninfo is None and settings.database_url is not None:
        conninfo = settings.database_url.get_secret_value()
    temporal, _ = await _temporal_checks(settings)
    return [
        *temporal,
        *await _postgres_checks(conninfo),
        *await _compute_checks(settings),
        _webhook_check(settings),
        _price_check(settings),
    ]


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Add the missing search attributes to `namespace` (self-hosted); returns those added."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    have = dict(listed.custom_attributes)
    missing = {
        k.name: IndexedValueType.ValueType(k.indexed_value_type.value)
        for k in SEARCH_ATTRIBUTES
        if k.name not in have
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


async def setup(settings: Settings, *, conninfo: str | None = None) -> list[str]:
    """Register the search attributes and apply migrations; returns what was done, one line each."""
    done: list[str] = []
    client = await connect_temporal(settings)
    added = await register_search_attributes(client, settings.temporal_namespace)
    done.append(
        f"search attributes added to {settings.temporal_namespace}: {', '.join(added)}"
        if added
        else f"search attributes already registered in {settings.temporal_namespace}"
    )
    if conninfo is None and settings.database_url is not None:
        conninfo = settings.database_url.get_secret_value()
    if conninfo is None:
        raise ValueError("DATABASE_URL is not set")
    applied = await apply_migrations(conninfo)
    done.append(f"migrations applied: {', '.join(applied)}" if applied else "migrations: up to date")
    return done
