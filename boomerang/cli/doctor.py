"""`boomerang doctor` and `boomerang setup` (mounted by `boomerang/cli/`)."""

from __future__ import annotations

import asyncio

import typer

from boomerang.doctor import Outcome, run_checks, setup
from boomerang.settings import Settings


def doctor_command() -> None:
    """Check this configuration (Temporal, Postgres, compute, webhooks, prices); exit 1 on a failure."""
    results = asyncio.run(run_checks(Settings()))
    for check in results:
        for line in check.lines():
            typer.echo(line)
    failed = [c.name for c in results if c.outcome is Outcome.FAIL]
    if failed:
        typer.echo(f"{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
    typer.echo("all checks passed")


def setup_command() -> None:
    """Register Boomerang's search attributes (self-hosted Temporal) and apply migrations."""
    try:
        done = asyncio.run(setup(Settings()))
    except Exception as exc:  # one line a person can act on, not a traceback
        typer.echo(f"setup failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    for line in done:
        typer.echo(line)
