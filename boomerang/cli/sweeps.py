"""`boomerang sweep estimate|start|status|watch|results|cancel` (workflows/sweep.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from temporalio.service import RPCError, RPCStatusCode

from boomerang.cli.common import run_command
from boomerang.cli.ledger import _pool as open_pool_for_cli
from boomerang.client import BoomerangClient
from boomerang.errors import UnknownRunError
from boomerang.models.cancel import CancelReceipt
from boomerang.models.sweeps import SweepProgress, SweepSpec
from boomerang.money import usd_text
from boomerang.pricing import load_price_table
from boomerang.settings import Settings
from boomerang.store.sweeps import SweepResults
from boomerang.sweep_export import FORMATS, export_lines
from boomerang.sweeps import estimate_sweep, resolve_sweep
from modal_app.registry import load_registry, parse_modules
from workflows.sweep_plan import SweepSpecError

sweep_app = typer.Typer(no_args_is_help=True, help="Sweeps: one function over a grid or a list of items.")

Function = Annotated[str | None, typer.Option("--function", help="A registered compute function.")]
TaskType = Annotated[str | None, typer.Option("--type", help="A specialist task type.")]
Grid = Annotated[str | None, typer.Option(help='Named axes, e.g. \'{"steps": [10, 100], "seed": [1, 2]}\'.')]
Items = Annotated[Path | None, typer.Option(help="A JSONL file, one item (JSON object) a line.")]
MaxParallel = Annotated[int, typer.Option(help="Calls in flight at most.")]
BatchBy = Annotated[str | None, typer.Option(help="An axis: its values' items run batch after batch.")]
VariantAxis = Annotated[
    str | None, typer.Option(help="An axis whose values name the compute function each item runs on.")
]
Base = Annotated[str | None, typer.Option(help="JSON object: fields every item gets (an item's own win).")]


def _spec(
    function: str | None, task_type: str | None, grid: str | None, items: Path | None, base: str | None,
    **kw: Any,
) -> SweepSpec:  # fmt: skip
    try:
        parsed_items = None
        if items is not None:
            lines = items.read_text().splitlines()
            parsed_items = [json.loads(line) for line in lines if line.strip()]
        return SweepSpec.model_validate(
            {"function": function, "task_type": task_type, "grid": None if grid is None else json.loads(grid),
             "items": parsed_items, "base": {} if base is None else json.loads(base),
             **{k: v for k, v in kw.items() if v is not None}}
        )  # fmt: skip
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from None


def _resolve(spec: SweepSpec, settings: Settings) -> Any:
    try:
        return resolve_sweep(spec, load_registry(parse_modules(settings.compute_modules)))
    except SweepSpecError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@sweep_app.command("estimate")
def estimate(
    function: Function = None, task_type: TaskType = None, grid: Grid = None, items: Items = None,
    max_parallel: MaxParallel = 8, batch_by: BatchBy = None, variant_axis: VariantAxis = None,
    base: Base = None,
    expected_seconds: Annotated[float, typer.Option(help="Seconds per item, for the estimate.")] = 10,
) -> None:  # fmt: skip
    """Item count, expected cost and wall time, from the price table; starts nothing."""
    settings = Settings()
    spec = _spec(function, task_type, grid, items, base, max_parallel=max_parallel, batch_by=batch_by,
                 variant_axis=variant_axis, expected_seconds=expected_seconds)  # fmt: skip
    est = estimate_sweep(_resolve(spec, settings), load_price_table(settings.price_table, env={}))
    typer.echo(f"items: {est.items}" + (f" in {est.batches} batches" if est.batches else ""))
    typer.echo(f"compute: {est.expected_compute_seconds:g} s ({', '.join(est.functions)})")
    typer.echo(f"estimated cost: ${usd_text(est.expected_cost_usd)} (prices {est.price_table_version})")
    typer.echo(f"estimated wall time: {est.expected_wall_seconds:g} s at max_parallel {est.max_parallel}")


@sweep_app.command("start")
def start(
    function: Function = None, task_type: TaskType = None, grid: Grid = None, items: Items = None,
    max_parallel: MaxParallel = 8, batch_by: BatchBy = None, variant_axis: VariantAxis = None,
    base: Base = None,
    tenant: Annotated[str, typer.Option()] = "default",
    max_cost_usd: Annotated[str | None, typer.Option(help="Cap; past it: approval.")] = None,
    on_item_failure: Annotated[str, typer.Option(help="continue or stop")] = "continue",
    retries: Annotated[int, typer.Option()] = 2,
    expected_seconds: Annotated[float, typer.Option()] = 10,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the sweep to end.")] = False,
) -> None:  # fmt: skip
    """Start a sweep; prints its id on the last line."""
    settings = Settings()
    spec = _spec(function, task_type, grid, items, base, max_parallel=max_parallel, batch_by=batch_by,
                 variant_axis=variant_axis, max_cost_usd=max_cost_usd, on_item_failure=on_item_failure,
                 retries=retries, expected_seconds=expected_seconds)  # fmt: skip
    _resolve(spec, settings)

    async def go() -> str:
        client = await BoomerangClient.connect(settings)
        sweep_id = await client.start_sweep(spec, tenant=tenant)
        if wait:
            handle = client.temporal.get_workflow_handle(sweep_id, result_type=SweepProgress)
            final = await handle.result()
            typer.echo(_line(final))
        return sweep_id

    typer.echo(asyncio.run(go()))


def _line(p: SweepProgress) -> str:
    return (
        f"{p.status}: {p.done} done, {p.failed} failed, {p.running} running, {p.pending} pending"
        f" of {p.total}; spent ${usd_text(p.spent_usd)}"
        + (f"; ETA {p.eta_seconds:.0f} s" if p.eta_seconds is not None else "")
        + (f"; awaiting {', '.join(p.awaiting)}" if p.awaiting else "")
        + (f" ({p.reason})" if p.reason else "")
    )


async def _progress_of(client: BoomerangClient, sweep_id: str) -> SweepProgress:
    try:
        return await client.sweep_progress(sweep_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UnknownRunError(f"no sweep {sweep_id!r}") from None
        raise


async def _progress(settings: Settings, sweep_id: str) -> SweepProgress:
    return await _progress_of(await BoomerangClient.connect(settings), sweep_id)


@sweep_app.command("status")
def status(sweep_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Done, failed, running, pending, per batch; spend and ETA."""
    p = run_command(lambda settings: _progress(settings, sweep_id))
    if as_json:
        typer.echo(p.model_dump_json(indent=2))
        return
    typer.echo(_line(p))
    for b in p.batches:
        typer.echo(f"  batch {b.key}: {b.done + b.failed}/{b.total} ({b.failed} failed)")


@sweep_app.command("watch")
def watch(sweep_id: str, every_s: Annotated[float, typer.Option()] = 1.0) -> None:
    """A live progress bar with ETA until the sweep ends."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    async def go(settings: Settings) -> SweepProgress:
        client = await BoomerangClient.connect(settings)
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
        with Progress(*columns, TimeRemainingColumn()) as bar:
            task = bar.add_task(sweep_id, total=None)
            while True:
                p = await _progress_of(client, sweep_id)
                bar.update(task, total=p.total, completed=p.done + p.failed + p.cancelled,
                           description=f"{sweep_id} {p.status} ${usd_text(p.spent_usd)}")  # fmt: skip
                if p.status not in ("running", "awaiting_approval"):
                    return p
                await asyncio.sleep(every_s)

    typer.echo(_line(run_command(go)))


@sweep_app.command("results")
def results(
    sweep_id: str, fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl"
) -> None:
    """Every item's parameters, status, output (or error) and cost."""
    if fmt not in FORMATS:
        raise typer.BadParameter("use jsonl or csv", param_hint="--format")

    async def go() -> None:
        async with open_pool_for_cli() as pool:
            async for line in export_lines(
                SweepResults(pool).rows(sweep_id), "csv" if fmt == "csv" else "jsonl"
            ):
                sys.stdout.write(line)

    asyncio.run(go())


@sweep_app.command("cancel")
def cancel(
    sweep_id: str,
    by: Annotated[str, typer.Option()] = "cli",
    reason: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Cancel the sweep: its in-flight calls are cancelled, finished items kept."""

    async def go(settings: Settings) -> CancelReceipt:
        return await (await BoomerangClient.connect(settings)).cancel(sweep_id, by=by, reason=reason)

    receipt = run_command(go)
    typer.echo(f"{sweep_id}: cancel {receipt.status}")
