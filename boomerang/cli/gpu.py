"""`boomerang gpu`: run a command on a GPU against this worktree, list runs, show warm policies.

    boomerang gpu exec --task-id WB101 --attempt 2 --env HF_TOKEN -- python -m pytest tests/gpu -q
    boomerang gpu runs --task-id WB101
    boomerang gpu policy --json

`exec` prints the command's stdout tail on stdout and its stderr tail on stderr, then
one line (stderr) with the exit code, cold/warm start, timings, cost and the artifact
URI, and exits with the command's own exit code (124 on timeout). When Boomerang
itself cannot run it (bad input, nothing dispatched; a worker-side failure) it says
why and exits 125, as `docker run` does. Ctrl-C cancels the run (and kills the
command) and exits 130.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import Client
from temporalio.service import RPCError

from boomerang.artifacts import artifact_store_from_settings
from boomerang.client import BoomerangClient
from boomerang.errors import BoomerangError
from boomerang.gpu_runs import prepare_gpu_run
from boomerang.gpu_telemetry import read_records, telemetry_path
from boomerang.models.gpu_runs import GpuRunOutcome, HotMode, policy_workflow_id
from boomerang.money import usd_text
from boomerang.settings import Settings
from boomerang.warm_policy import PolicyState
from modal_app.gpu_exec import DEFAULT_GPU, GPU_TYPES, function_name

gpu_app = typer.Typer(no_args_is_help=True, help="Run commands on GPUs against this worktree.")

BOOMERANG_FAILED = 125
INTERRUPTED = 130


@gpu_app.command("exec")
def exec_command(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments, after --.")],
    workdir: Annotated[Path, typer.Option(help="The worktree to snapshot.")] = Path("."),
    gpu: Annotated[str, typer.Option(help=f"GPU type: {', '.join(GPU_TYPES)}.")] = DEFAULT_GPU,
    timeout: Annotated[float, typer.Option(help="Seconds before the command is killed (exit 124).")] = 600,
    task_id: Annotated[str, typer.Option(help="Groups runs (artifacts, telemetry).")] = "adhoc",
    attempt: Annotated[int, typer.Option(help="Attempt number of this task.")] = 1,
    env: Annotated[
        list[str] | None, typer.Option(help="Pass this variable (by name, from here); repeatable.")
    ] = None,
    hot_mode: Annotated[HotMode, typer.Option(help="Warm policy override.")] = HotMode.AUTO,
) -> None:
    """Run COMMAND on a GPU against a snapshot of the worktree; exit with its exit code."""
    settings = Settings()
    try:
        outcome = asyncio.run(
            _exec(settings, command, workdir, gpu, timeout, task_id, attempt, env or [], hot_mode)
        )
    except BoomerangError as exc:
        typer.echo(f"boomerang: {exc}", err=True)
        raise typer.Exit(BOOMERANG_FAILED) from None
    except KeyboardInterrupt:
        typer.echo("boomerang: interrupted; the run was cancelled", err=True)
        raise typer.Exit(INTERRUPTED) from None
    if outcome.stdout_tail:
        typer.echo(outcome.stdout_tail, nl=False)
    if outcome.stderr_tail:
        typer.echo(outcome.stderr_tail, nl=False, err=True)
    typer.echo(_summary(outcome), err=True)
    raise typer.Exit(outcome.exit_code if outcome.exit_code is not None else BOOMERANG_FAILED)


async def _exec(
    settings: Settings,
    command: list[str],
    workdir: Path,
    gpu: str,
    timeout_s: float,
    task_id: str,
    attempt: int,
    env_names: list[str],
    hot_mode: HotMode,
) -> GpuRunOutcome:
    # Checked and packed before connecting: bad input never reaches Temporal.
    inp = await asyncio.to_thread(
        prepare_gpu_run, command, workdir=workdir, store=artifact_store_from_settings(settings), gpu=gpu,
        timeout_s=timeout_s, task_id=task_id, attempt=attempt, env_names=env_names, hot_mode=hot_mode,
        max_snapshot_bytes=settings.gpu_snapshot_max_bytes,
    )  # fmt: skip
    client = await BoomerangClient.connect(settings)
    run_id = await client.start_gpu_run(inp)
    try:
        return await client.gpu_run_result(run_id)
    except asyncio.CancelledError:
        await client.temporal.get_workflow_handle(run_id).cancel()
        raise


def _summary(o: GpuRunOutcome) -> str:
    code = "timed out (124)" if o.timed_out else f"exit code {o.exit_code}"
    timings = f"queue {o.queue_s or 0:.2f}s, run {o.run_s or 0:.2f}s"
    return f"boomerang: {code} · {o.start} start · {timings} · ${usd_text(o.cost_usd)} · {o.artifact_uri}"


@gpu_app.command("runs")
def runs_command(
    task_id: Annotated[str | None, typer.Option(help="Only this task's runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run, as a list.")] = False,
    limit: Annotated[int, typer.Option(help="The most recent N.")] = 50,
) -> None:
    """Recent GPU runs, oldest first, from the telemetry file under the state dir."""
    records = read_records(telemetry_path(Settings().state_dir), task_id=task_id, limit=limit)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return
    for r in records:
        code = "124 (timeout)" if r.timed_out else str(r.exit_code if r.exit_code is not None else "-")
        typer.echo(
            f"{r.recorded_at:%Y-%m-%d %H:%M:%S}  {r.task_id}  attempt {r.attempt}  {r.gpu}  {r.status}  "
            f"exit {code}  {r.start or '-'}  queue {r.queue_s or 0:.2f}s run {r.run_s or 0:.2f}s  "
            f"${usd_text(r.cost_usd)}  {r.artifact_uri or ''}"
        )


@gpu_app.command("policy")
def policy_command(
    as_json: Annotated[bool, typer.Option("--json", help="Each function's policy state as JSON.")] = False,
) -> None:
    """Each GPU function's warm mode (cold/hybrid/hot), why, and its recent cold starts."""
    settings = Settings()
    try:
        states = asyncio.run(_policies(settings))
    except BoomerangError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([s.model_dump(mode="json") for s in states], indent=2))
        return
    if not states:
        typer.echo("no GPU function has run yet: every one is in its base mode (hybrid)")
    for s in states:
        colds = ", ".join(f"{c:g}s" for c in s.cold_starts) or "none"
        when = f"{s.changed_at:%Y-%m-%d %H:%M UTC}" if s.changed_at else "-"
        typer.echo(f"{s.function}  {s.mode}  since {when}: {s.reason}  ·  recent cold starts: {colds}")


async def _policies(settings: Settings) -> list[PolicyState]:
    from boomerang.connect import connect_temporal

    client: Client = await connect_temporal(settings)
    states: list[PolicyState] = []
    for gpu in GPU_TYPES:
        handle = client.get_workflow_handle(policy_workflow_id(function_name(gpu)))
        try:
            raw = await handle.query("policy", result_type=PolicyState)
        except RPCError:
            continue  # never ran, or its query cannot be answered now
        states.append(PolicyState.model_validate(raw))
    return states
