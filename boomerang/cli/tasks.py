"""Specialist tasks: `task run`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from pydantic import ValidationError

from boomerang.cli.common import WEBHOOK_HELP, run_command
from boomerang.client import BoomerangClient
from boomerang.models.tasks import TaskInput
from boomerang.settings import Settings

task_app = typer.Typer(no_args_is_help=True, help="Run Boomer_Ang specialist tasks.")


@task_app.command("run")
def taskrun_command(
    task_type: Annotated[str, typer.Option("--type", help="e.g. code_generation, research, design.")],
    payload: Annotated[str, typer.Option(help="The task's JSON payload.")] = "{}",
    specialist: Annotated[str | None, typer.Option(help="e.g. Code_Ang; default: by task type.")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant the task belongs to.")] = "default",
    max_cost_usd: Annotated[float | None, typer.Option(help="Refuse to start above this estimate.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait and print the outcome as JSON.")] = True,
    webhook_url: Annotated[str | None, typer.Option(help=WEBHOOK_HELP)] = None,
) -> None:
    """Run one specialist task on compute; prints its id (and, with --wait, its outcome)."""
    try:
        inp = TaskInput.model_validate(
            {
                "tenant": tenant, "task_type": task_type, "boomer_ang_id": specialist,
                "payload": json.loads(payload),
                "max_cost_usd": None if max_cost_usd is None else str(max_cost_usd),
                "webhook_url": webhook_url,
            }
        )  # fmt: skip
    except (ValidationError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(str(exc)) from None

    async def run(settings: Settings) -> str:
        client = await BoomerangClient.connect(settings)
        task_id = await client.start_task(inp)
        if not wait:
            return task_id
        typer.echo(task_id)
        return (await client.task_result(task_id)).model_dump_json(indent=2)

    typer.echo(run_command(run))
