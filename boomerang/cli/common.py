"""What every `boomerang` command shares: running a client call, and its errors as exit codes.

refused (a decision or cancel the run would not take): exit 2, `refused: <why>`
unknown run: exit 3;  any other BoomerangError: exit 1, its one line
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer
from pydantic import ValidationError

from boomerang.errors import BoomerangError, CancelRefusedError, InvalidDecisionError, UnknownRunError
from boomerang.observability.tracing import command_name, command_span
from boomerang.settings import Settings

T = TypeVar("T")
WEBHOOK_HELP = "POST signed notifications here (the worker signs with BOOMERANG_WEBHOOK_SECRET)."


def run_command(make: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    settings = Settings()
    try:
        # With tracing on, the command is the root span of the run it starts or touches.
        with command_span(command_name(make)):
            return asyncio.run(make(settings))
    except (InvalidDecisionError, CancelRefusedError) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    except UnknownRunError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(3) from None
    except BoomerangError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors())
