"""This machine: `dev` (the embedded stack), `migrate`, `worker`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import structlog
import typer

from boomerang.logs import configure_logging
from boomerang.settings import Settings


def dev(
    demo: Annotated[
        bool, typer.Option(help="Start a demo pipeline to approve, unless one is still in flight.")
    ] = True,
    temporal_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Temporal gRPC port. Default: from BOOMERANG_TEMPORAL_ADDRESS."),
    ] = None,
    ui_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Temporal Web UI port. Default: BOOMERANG_TEMPORAL_UI_PORT."),
    ] = None,
    api_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="HTTP API port. Default: BOOMERANG_API_PORT.")
    ] = None,
) -> None:
    """Run everything on this machine: Temporal + UI, Postgres, worker, HTTP API."""
    from boomerang.binaries import MissingBinaryError
    from boomerang.devmain import dev_settings, run_dev
    from boomerang.devstack import DevStackError

    try:
        settings = dev_settings(Settings(), temporal_port=temporal_port, ui_port=ui_port, api_port=api_port)
        asyncio.run(run_dev(settings, demo=demo))
    except (DevStackError, MissingBinaryError) as exc:  # the latter says what to install
        typer.echo(f"boomerang dev: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:  # before the stack took over SIGINT: nothing was started
        raise typer.Exit(130) from None


def migrate() -> None:
    """Apply database migrations to DATABASE_URL (or the embedded database)."""
    from boomerang.store.embedded import resolve_conninfo
    from boomerang.store.migrate import apply_migrations

    settings = Settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    applied = asyncio.run(apply_migrations(resolve_conninfo(settings)))
    if settings.log_json:  # a log collector reads every line as JSON
        structlog.get_logger("boomerang.migrate").info("migrations", applied=applied, up_to_date=not applied)
        return
    typer.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


def worker() -> None:
    """Run a worker against DATABASE_URL and BOOMERANG_TEMPORAL_ADDRESS."""
    from worker import main as worker_main

    worker_main()
