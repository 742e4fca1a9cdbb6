"""`boomerang webhooks register | rotate | endpoints`: per-endpoint signing secrets.

    boomerang webhooks register --tenant acme --url https://hooks.acme.example/boomerang  # prints whsec_…
    boomerang webhooks rotate --tenant acme --url https://hooks.acme.example/boomerang --overlap-hours 24
    boomerang webhooks endpoints [--tenant acme]

A URL is checked against the webhook URL policy (BOOMERANG_WEBHOOK_ALLOW_HOSTS,
BOOMERANG_WEBHOOK_REQUIRE_HTTPS) before it is registered.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from pydantic import HttpUrl, ValidationError

from boomerang.cli.ledger import run_with_pool
from boomerang.settings import Settings
from boomerang.store.endpoints import EndpointError, list_endpoints, register_endpoint, rotate_secret
from boomerang.webhooks.urls import WebhookUrlPolicy, WebhookUrlRefused, check_webhook_url

Url = Annotated[str, typer.Option(help="The endpoint, exactly as runs give it as webhook_url.")]
Tenant = Annotated[str, typer.Option(help="The tenant whose runs notify it.")]


def _normalised(url: str) -> str:
    """The URL as a run's `webhook_url` will carry it (pydantic's HttpUrl form), checked."""
    try:
        text = str(HttpUrl(url))
        check_webhook_url(text, WebhookUrlPolicy.from_settings(Settings()), field="--url")
    except (ValidationError, WebhookUrlRefused) as exc:
        typer.echo(
            str(exc).splitlines()[0] if isinstance(exc, WebhookUrlRefused) else f"--url: {exc}", err=True
        )
        raise typer.Exit(2) from None
    return text


def register_endpoint_commands(app: typer.Typer) -> None:
    @app.command("register")
    def register(tenant: Tenant, url: Url) -> None:
        """Register an endpoint and print its signing secret once (whsec_…)."""
        text = _normalised(url)
        try:
            endpoint, secret = run_with_pool(lambda pool: register_endpoint(pool, tenant=tenant, url=text))
        except EndpointError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        typer.echo(f"endpoint {endpoint.id} for tenant {tenant}: {text}; its secret, shown once:", err=True)
        typer.echo(secret)

    @app.command("rotate")
    def rotate(
        tenant: Tenant,
        url: Url,
        overlap_hours: Annotated[
            float, typer.Option(min=0, help="How long the old secret keeps signing beside the new one.")
        ] = 24.0,
    ) -> None:
        """Give an endpoint a new secret (printed once); the old one signs too until the overlap ends."""
        text = _normalised(url)
        overlap = timedelta(hours=overlap_hours)
        try:
            secret = run_with_pool(lambda pool: rotate_secret(pool, tenant=tenant, url=text, overlap=overlap))
        except EndpointError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        typer.echo(f"new secret for {text}; the previous one signs for {overlap_hours:g} h more:", err=True)
        typer.echo(secret)

    @app.command("endpoints")
    def endpoints(tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None) -> None:
        """Registered endpoints, with how many secrets sign for each now (never the secrets)."""
        rows = run_with_pool(lambda pool: list_endpoints(pool, tenant=tenant))
        if not rows:
            typer.echo("no endpoints")
        for e in rows:
            until = f", old secret until {e.next_expiry:%Y-%m-%d %H:%M} UTC" if e.next_expiry else ""
            typer.echo(f"{e.id}  {e.tenant}  {e.url}  {e.secrets} secret(s){until}")
