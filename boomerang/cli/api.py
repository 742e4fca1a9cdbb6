"""`boomerang api`, `boomerang tokens ...` and `boomerang webhooks ...`.

Mounted by `boomerang/cli/`:

    app.add_typer(tokens_app, name="tokens")
    app.add_typer(webhooks_app, name="webhooks")
    app.command("api", help="Serve the HTTP API.")(api_command)

A token is printed once, at creation, on stdout alone (so `TOKEN=$(boomerang
tokens create ...)` works); only its SHA-256 is stored. The server itself is
`boomerang.api.serve.serve_api`, which `boomerang dev` also runs beside its worker.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, TypeVar

import psycopg
import structlog
import typer
from psycopg_pool import AsyncConnectionPool

from boomerang.api.serve import ApiStartError, serve_api
from boomerang.cli.ledger import run_with_pool
from boomerang.cli.webhook_endpoints import register_endpoint_commands
from boomerang.logs import configure_logging
from boomerang.observability.tracing import configure_tracing
from boomerang.settings import Settings
from boomerang.store.deliveries import DeliveryStore
from boomerang.store.embedded import resolve_conninfo
from boomerang.store.migrate import apply_migrations
from boomerang.store.tokens import ApiRole, TokenError, create_token, list_tokens, revoke_token

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
T = TypeVar("T")
log = structlog.get_logger(__name__)

tokens_app = typer.Typer(no_args_is_help=True, help="API bearer tokens: one tenant and one role each.")
webhooks_app = typer.Typer(
    no_args_is_help=True, help="Outgoing webhooks: endpoints and their secrets, what could not be delivered."
)
register_endpoint_commands(webhooks_app)


@tokens_app.command("create")
def tokens_create(
    tenant: Annotated[str, typer.Option(help="The tenant whose runs the token may see.")],
    role: Annotated[ApiRole, typer.Option(help="approver: start and decide; viewer: read only.")] = (
        ApiRole.APPROVER
    ),
    name: Annotated[str | None, typer.Option(help="Who holds it; decisions are recorded under it.")] = None,
) -> None:
    """Create a token and print it once; it cannot be shown again."""
    try:
        issued = run_with_pool(lambda pool: create_token(pool, tenant=tenant, role=role, name=name))
    except TokenError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    info = issued.info
    typer.echo(f"token {info.name} ({info.role.value}) for tenant {info.tenant}; shown once:", err=True)
    typer.echo(issued.token.get_secret_value())


@tokens_app.command("revoke")
def tokens_revoke(
    name_or_prefix: Annotated[
        str, typer.Argument(help="The token's name, or its prefix (bmr_<prefix>_...).")
    ],
    tenant: Annotated[str, typer.Option(help="The tenant the token belongs to.")],
) -> None:
    """Revoke a live token; requests with it are refused at once."""
    revoked = run_with_pool(lambda pool: revoke_token(pool, tenant=tenant, name_or_prefix=name_or_prefix))
    if not revoked:
        typer.echo(f"no live token {name_or_prefix!r} for tenant {tenant!r}", err=True)
        raise typer.Exit(1)
    for token in revoked:
        typer.echo(f"revoked {token.name} (bmr_{token.prefix}_...)")


@tokens_app.command("list")
def tokens_list(tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None) -> None:
    """List tokens (never their secrets)."""
    for t in run_with_pool(lambda pool: list_tokens(pool, tenant=tenant)):
        state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "live"
        typer.echo(f"{t.tenant}  {t.name}  {t.role.value}  bmr_{t.prefix}_...  {state}")


@webhooks_app.command("dead-letters")
def dead_letters(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Webhooks that were given up on, newest first."""
    letters = run_with_pool(lambda pool: DeliveryStore(pool).dead_letters(tenant=tenant, run_id=run_id))
    if as_json:
        typer.echo(json.dumps([letter.model_dump(mode="json") for letter in letters], indent=2))
        return
    if not letters:
        typer.echo("no dead letters")
    for d in letters:
        when = f"{d.dead_at:%Y-%m-%d %H:%M}" if d.dead_at else "-"
        typer.echo(f"{when}  {d.tenant}  {d.run_id}  {d.event}  {d.url}  {d.attempts} attempt(s): {d.reason}")


def api_command(
    host: Annotated[str | None, typer.Option(help="Default: BOOMERANG_API_HOST or 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: BOOMERANG_API_PORT or 8787.")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) against BOOMERANG_TEMPORAL_ADDRESS and DATABASE_URL."""
    overrides: dict[str, Any] = {k: v for k, v in (("api_host", host), ("api_port", port)) if v is not None}
    settings = Settings(**overrides)
    configure_logging(level=settings.log_level, json=settings.log_json)
    configure_tracing("boomerang-api")
    if settings.webhook_secret is None:
        log.warning("BOOMERANG_WEBHOOK_SECRET is not set: compute callbacks are refused (503)")

    async def main() -> None:
        conninfo = await asyncio.to_thread(resolve_conninfo, settings)
        if settings.database_url is None:
            await apply_migrations(conninfo)
        typer.echo(
            f"Boomerang API on http://{settings.api_host}:{settings.api_port} (docs at /docs)", err=True
        )
        await serve_api(settings, conninfo=conninfo)

    try:
        asyncio.run(main())
    except ApiStartError as exc:  # uvicorn has logged the cause (e.g. the port is taken)
        typer.echo(f"{exc}; BOOMERANG_API_PORT or --port moves it", err=True)
        raise typer.Exit(1) from None
