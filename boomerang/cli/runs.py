"""Runs: `pipeline start`, `decide`, `cancel`, `status`, `approvals`."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from boomerang.cli.common import WEBHOOK_HELP, problems, run_command
from boomerang.client import BoomerangClient
from boomerang.models.cancel import CancelInput
from boomerang.models.decisions import (
    CheckpointContext,
    CheckpointView,
    DecisionInput,
    PipelineStatus,
    ReceiptStatus,
)
from boomerang.models.pipeline import Decision, PipelineInput
from boomerang.settings import Settings
from boomerang.spec_files import SpecFileError, load_spec

pipeline_app = typer.Typer(no_args_is_help=True, help="Start validation pipelines.")


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
    webhook_url: Annotated[str | None, typer.Option(help=WEBHOOK_HELP)] = None,
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
        raise typer.BadParameter(problems(exc)) from None
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--context is not JSON: {exc}") from None

    async def start(settings: Settings) -> str:
        return await (await BoomerangClient.connect(settings)).start_pipeline(inp)

    typer.echo(run_command(start))


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
        raise typer.BadParameter(problems(exc)) from None

    async def send(settings: Settings) -> str:
        receipt = await (await BoomerangClient.connect(settings)).decide(run_id, d)
        where = receipt.checkpoint + (f" (opening {receipt.opening})" if receipt.opening else "")
        line = f"{receipt.status}: {receipt.decision.value} on {where} ({receipt.decision_id})"
        if receipt.status is ReceiptStatus.HELD:
            line += (
                f"\n{receipt.checkpoint} opens when the running phase finishes; the decision lands then."
                f"\nto see that it did: boomerang status {run_id}"
            )
        if receipt.status is ReceiptStatus.PENDING:
            line += (
                "\nno worker has taken it yet; Temporal keeps it and a worker validates it when one runs."
                f"\nto see what became of it, send it again with --decision-id {receipt.decision_id}"
            )
        return line

    typer.echo(run_command(send))


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
        raise typer.BadParameter(problems(exc)) from None

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

    typer.echo(run_command(send))


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


def status(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full status as JSON.")] = False,
) -> None:
    """Show a run: its phase, what it waits for, decisions and refused inputs."""

    async def get(settings: Settings) -> PipelineStatus:
        return await (await BoomerangClient.connect(settings)).status(run_id)

    st = run_command(get)
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


def approvals(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List checkpoints waiting for a decision, soonest deadline first."""

    async def get(settings: Settings) -> list[Any]:
        return await (await BoomerangClient.connect(settings)).pending_approvals(tenant)

    pending = run_command(get)
    if as_json:
        typer.echo(json.dumps([p.model_dump(mode="json") for p in pending], indent=2))
        return
    if not pending:
        typer.echo("nothing is waiting for a decision")
    for p in pending:
        typer.echo(f"{p.run_id}  {p.tenant}  {p.project_id}")
        _echo_checkpoint(p.checkpoint, indent="  ")
