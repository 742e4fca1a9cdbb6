"""The `boomerang` command: the embedded stack, pipelines, approvals and status."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
import warnings
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import structlog
import typer
from pydantic import ValidationError

from boomerang.api_cli import api_command, tokens_app, webhooks_app
from boomerang.client import BoomerangClient
from boomerang.doctor_cli import doctor_command, setup_command
from boomerang.errors import BoomerangError, CancelRefusedError, InvalidDecisionError, UnknownRunError
from boomerang.gpu_cli import gpu_app
from boomerang.logs import configure_logging
from boomerang.models.cancel import CancelInput
from boomerang.models.decisions import (
    CheckpointContext,
    CheckpointView,
    DecisionInput,
    PipelineStatus,
    ReceiptStatus,
)
from boomerang.models.pipeline import Decision, PipelineInput
from boomerang.models.tasks import TaskInput
from boomerang.observability.tracing import command_name, command_span
from boomerang.settings import Settings
from boomerang.spec_files import SpecFileError, load_spec
from boomerang.store.cli import charter_command, cost_command, ledger_app
from boomerang.sweep_cli import sweep_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
pipeline_app = typer.Typer(no_args_is_help=True, help="Start validation pipelines.")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(ledger_app, name="ledger")
app.command("charter", help="What the customer sees of a run (the Charter).")(charter_command)
app.command("cost", help="What a run has cost, by phase and specialist.")(cost_command)
task_app = typer.Typer(no_args_is_help=True, help="Run Boomer_Ang specialist tasks.")
app.add_typer(task_app, name="task")
app.add_typer(tokens_app, name="tokens")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(gpu_app, name="gpu")
app.add_typer(sweep_app, name="sweep")
app.command("api", help="Serve the HTTP API (BOOMERANG_API_PORT, default 8787).")(api_command)
app.command("doctor", help="Check this configuration before it is used; exit 1 on a failure.")(doctor_command)
app.command("setup", help="Register search attributes (self-hosted Temporal) and apply migrations.")(
    setup_command
)

T = TypeVar("T")
_WEBHOOK_HELP = "POST signed notifications here (the worker signs with BOOMERANG_WEBHOOK_SECRET)."


def _run(make: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
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


def _parse_roster(entries: list[str]) -> dict[str, tuple[str, ...]]:
    roster: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        role, sep, people = entry.partition("=")
        if not sep or not role or not people:
            raise typer.BadParameter(f"{entry!r}: use ROLE=person[,person...]", param_hint="--roster")
        roster[role] = tuple(p.strip() for p in people.split(",") if p.strip())
    return roster


@pipeline_app.command("start")
def pipeline_start(
    tenant: Annotated[str, typer.Option(help="Tenant (customer) the run belongs to.")],
    project_id: Annotated[str, typer.Option("--project-id", help="The customer's project.")],
    brief: Annotated[str, typer.Option(help="The founder's brief, as text.")],
    roster: Annotated[list[str], typer.Option(help="ROLE=alice,bob; repeat per role.")] = [],  # noqa: B006
    context: Annotated[str, typer.Option(help="JSON object of extra inputs.")] = "{}",
    webhook_url: Annotated[str | None, typer.Option(help=_WEBHOOK_HELP)] = None,
    budget_usd: Annotated[
        str | None, typer.Option(help="USD the run may spend before it asks (approve_budget_increase).")
    ] = None,
    spec: Annotated[
        Path | None, typer.Option(help="A pipeline file (YAML or JSON); default: the startup pipeline.")
    ] = None,
) -> None:
    """Start a validation pipeline and print its run id."""
    try:
        pipeline = None if spec is None else load_spec(spec)
    except SpecFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--spec") from None
    try:
        inp = PipelineInput.model_validate(
            {
                "tenant": tenant, "project_id": project_id, "brief": brief,
                "roster": _parse_roster(roster), "context": json.loads(context), "webhook_url": webhook_url,
                "budget_usd": budget_usd, "spec": pipeline,
            }
        )  # fmt: skip
    except ValidationError as exc:
        raise typer.BadParameter(_problems(exc)) from None
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--context is not JSON: {exc}") from None

    async def start(settings: Settings) -> str:
        return await (await BoomerangClient.connect(settings)).start_pipeline(inp)

    typer.echo(_run(start))


@task_app.command("run")
def task_run(
    task_type: Annotated[str, typer.Option("--type", help="e.g. code_generation, research, design.")],
    payload: Annotated[str, typer.Option(help="The task's JSON payload.")] = "{}",
    specialist: Annotated[str | None, typer.Option(help="e.g. Code_Ang; default: by task type.")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant the task belongs to.")] = "default",
    max_cost_usd: Annotated[float | None, typer.Option(help="Refuse to start above this estimate.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait and print the outcome as JSON.")] = True,
    webhook_url: Annotated[str | None, typer.Option(help=_WEBHOOK_HELP)] = None,
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

    typer.echo(_run(run))


@app.command()
def decide(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    checkpoint: Annotated[str, typer.Argument(help="e.g. approve_founders_brief")],
    decision: Annotated[Decision, typer.Argument(help="approve, reject, iterate, pivot, override_proceed")],
    by: Annotated[str, typer.Option("--by", help="Who decides (recorded in the Ledger).")],
    comment: Annotated[str | None, typer.Option(help="Feedback for iterate, hypothesis for pivot.")] = None,
    target_phase: Annotated[str | None, typer.Option(help="For pivot: phase name or index.")] = None,
    decision_id: Annotated[str | None, typer.Option(help="Idempotency key; resending is a no-op.")] = None,
    opening: Annotated[
        int | None,
        typer.Option(min=1, help="The opening you looked at (status shows it); refused if it has closed."),
    ] = None,
    budget_usd: Annotated[
        str | None, typer.Option(help="approve_budget_increase: the new budget in USD.")
    ] = None,
) -> None:
    """Decide a pending checkpoint (validated by the run before it lands)."""
    try:
        d = DecisionInput.model_validate(
            {
                "checkpoint": checkpoint, "approver": by, "decision": decision, "comment": comment,
                "target_phase": target_phase, "decision_id": decision_id, "opening": opening,
                "budget_usd": budget_usd,
            }
        )  # fmt: skip
    except ValidationError as exc:
        raise typer.BadParameter(_problems(exc)) from None

    async def send(settings: Settings) -> str:
        receipt = await (await BoomerangClient.connect(settings)).decide(run_id, d)
        where = receipt.checkpoint + (f" (opening {receipt.opening})" if receipt.opening else "")
        line = f"{receipt.status}: {receipt.decision.value} on {where} ({receipt.decision_id})"
        if receipt.status is ReceiptStatus.PENDING:
            line += (
                "\nno worker has taken it yet; Temporal keeps it and a worker validates it when one runs."
                f"\nto see what became of it, send it again with --decision-id {receipt.decision_id}"
            )
        return line

    typer.echo(_run(send))


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="The run id (a pipeline, or a task run alone).")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the Ledger with who cancelled).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who cancels. Default: your login name.")] = None,
) -> None:
    """Cancel a run: stop its compute, close its checkpoints, end it `cancelled`."""
    who = by or getpass.getuser()
    try:
        CancelInput(by=who, reason=reason)
    except ValidationError as exc:
        raise typer.BadParameter(_problems(exc)) from None

    async def send(settings: Settings) -> str:
        receipt = await (await BoomerangClient.connect(settings)).cancel(run_id, by=who, reason=reason)
        if receipt.status == "pending":
            return (
                f"pending: cancel of {run_id} sent by {who}; no worker has taken it yet."
                "\nTemporal keeps it and the run is cancelled when a worker runs."
            )
        why = f": {receipt.reason}" if receipt.reason else ""
        if receipt.status == "duplicate":
            return f"duplicate: {run_id} was already cancelled (by {receipt.by or 'unknown'}{why})"
        return f"applied: {run_id} cancelled (by {receipt.by}{why})"

    typer.echo(_run(send))


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors())


def _echo_checkpoint(cp: CheckpointView, *, indent: str) -> None:
    """What a person deciding `cp` reads: what it gates, the advice, what each option does."""
    deadline = f"{cp.deadline:%Y-%m-%d %H:%M} UTC" if cp.deadline else "-"
    typer.echo(f"{indent}waiting: {cp.name} (opening {cp.opening})  deadline: {deadline}")
    ctx = CheckpointContext.model_validate(cp.context) if "summary" in cp.context else None
    if ctx is None:
        typer.echo(f"{indent}  options: {', '.join(cp.options)}")
        return
    typer.echo(f"{indent}  {ctx.summary}")
    if ctx.recommendation is not None:
        typer.echo(
            f"{indent}  recommended: {ctx.recommendation.value}" + (f" ({ctx.why})" if ctx.why else "")
        )
    if ctx.budget_usd is not None:
        typer.echo(
            f"{indent}  spent ${ctx.spent_usd} of ${ctx.budget_usd}; next: {ctx.next} ~${ctx.estimate_usd}"
        )
    for option in ctx.options:
        typer.echo(f"{indent}  {option.decision.value:<17} {option.effect}")


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full status as JSON.")] = False,
) -> None:
    """Show a run: its phase, what it waits for, decisions and refused inputs."""

    async def get(settings: Settings) -> PipelineStatus:
        return await (await BoomerangClient.connect(settings)).status(run_id)

    st = _run(get)
    if as_json:
        typer.echo(st.model_dump_json(indent=2))
        return
    typer.echo(f"{st.run_id}  tenant={st.tenant}  project={st.project_id}")
    typer.echo(f"status: {st.status.value}   phase: {st.phase or '-'}   pivots: {st.pivots}")
    if st.cancellation is not None:
        why = f": {st.cancellation.reason}" if st.cancellation.reason else ""
        typer.echo(f"  cancelled by {st.cancellation.by or 'unknown (a Temporal cancel)'}{why}")
    for cp in st.pending:
        _echo_checkpoint(cp, indent="  ")
    for d in st.decisions:
        at = f"{d.applied_at:%Y-%m-%d %H:%M:%S}" if d.applied_at else "-"
        opened = f" (opening {d.opening})" if d.opening else ""
        typer.echo(
            f"  decided: {d.checkpoint}{opened} -> {d.decision.value} by {d.approver} at {at} ({d.via})"
        )
    for r in st.refused:
        typer.echo(f"  refused ({r.via}): {r.reason}")


@app.command()
def approvals(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List checkpoints waiting for a decision, soonest deadline first."""

    async def get(settings: Settings) -> list[Any]:
        return await (await BoomerangClient.connect(settings)).pending_approvals(tenant)

    pending = _run(get)
    if as_json:
        typer.echo(json.dumps([p.model_dump(mode="json") for p in pending], indent=2))
        return
    if not pending:
        typer.echo("nothing is waiting for a decision")
    for p in pending:
        typer.echo(f"{p.run_id}  {p.tenant}  {p.project_id}")
        _echo_checkpoint(p.checkpoint, indent="  ")


@app.command()
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


@app.command()
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


@app.command()
def worker() -> None:
    """Run a worker against DATABASE_URL and BOOMERANG_TEMPORAL_ADDRESS."""
    from worker import main as worker_main

    worker_main()


def main() -> None:
    """Entry point; exits hard after flushing so the SDK's exit-time abort cannot
    replace a finished command's status (sdk-python #300)."""
    # pgserver asks platformdirs for a runtime dir that headless machines lack; harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    code = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
