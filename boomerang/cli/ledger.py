"""`boomerang ledger ...` and `boomerang charter`: read and prove the records.

Mounted by `boomerang/cli/`:

    app.add_typer(ledger_app, name="ledger")
    app.command("charter")(charter_command)

Each command builds `Settings()` and its own pool (DATABASE_URL, or the embedded
server, migrated first). The connection string is never printed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import psycopg
import typer
from psycopg_pool import AsyncConnectionPool
from typer.core import TyperGroup

from boomerang.money import usd_text
from boomerang.settings import Settings
from boomerang.store import integrity as ledger_verify
from boomerang.store import queries
from boomerang.store.anchors import latest_anchor, write_anchor
from boomerang.store.costs import cost_report
from boomerang.store.embedded import resolve_conninfo
from boomerang.store.migrate import apply_migrations
from boomerang.store.recorder import open_pool

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
T = TypeVar("T")


class _ShowByDefault(TyperGroup):
    """`boomerang ledger RUN` means `boomerang ledger show RUN`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer vendors its own click
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


ledger_app = typer.Typer(
    cls=_ShowByDefault,
    help="The internal Ledger: `ledger RUN` lists a run with costs; verify; anchor.",
    no_args_is_help=True,
)


@asynccontextmanager
async def _pool() -> AsyncIterator[Pool]:
    settings = Settings()
    conninfo = await asyncio.to_thread(resolve_conninfo, settings)
    if settings.database_url is None:  # the embedded server is ours to migrate
        await apply_migrations(conninfo)
    pool = await open_pool(conninfo, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


def run_with_pool(job: Callable[[Pool], Awaitable[T]]) -> T:
    """Run one database job for a CLI command, on a short-lived pool."""

    async def main() -> T:
        async with _pool() as pool:
            return await job(pool)

    return asyncio.run(main())


@ledger_app.command("verify")
def verify_command(
    run_id: Annotated[str | None, typer.Argument(help="One run; all runs when omitted.")] = None,
    anchor_file: Annotated[
        Path | None, typer.Option("--anchor", help="Also prove the chains up to these heads.")
    ] = None,
    anchors_dir: Annotated[
        Path | None,
        typer.Option(
            help="Compare with the newest scheduled anchor here (default BOOMERANG_LEDGER_ANCHOR_DIR)."
        ),
    ] = None,
) -> None:
    """Recompute the hash chains and compare them with the anchors; exit 1 naming every broken row."""
    directory = anchors_dir or Settings().ledger_anchor_path
    latest = latest_anchor(directory)
    sources = (
        [(str(anchor_file), ledger_verify.HEADS.validate_json(anchor_file.read_bytes()))]
        if anchor_file
        else []
    )
    if latest is not None:
        sources.append((str(latest[0]), latest[1]))

    async def job(pool: Pool) -> ledger_verify.VerifyReport:
        report = await ledger_verify.verify(pool, run_id)
        breaks, rows = list(report.breaks), report.rows_checked
        # Anchors are always compared, broken chains or not: one bad row must not hide a rewrite.
        for _, heads in sources:
            if run_id is not None:
                heads = [h for h in heads if h.stream == run_id]
            anchored = await ledger_verify.verify_against_anchor(pool, heads)
            seen = {(b.stream, b.seq, b.reason) for b in breaks}
            breaks += [b for b in anchored.breaks if (b.stream, b.seq, b.reason) not in seen]
        return ledger_verify.VerifyReport(
            streams_checked=report.streams_checked, rows_checked=rows, breaks=breaks
        )

    report = run_with_pool(job)
    compared = ", ".join(name for name, _ in sources) or "none (run `boomerang ledger schedule-anchoring`)"
    if not report.ok:
        for broken in report.breaks:
            typer.echo(f"BROKEN {broken.describe()}", err=True)
        streams = len({b.stream for b in report.breaks})
        typer.echo(
            f"{len(report.breaks)} break(s) in {streams} of {report.streams_checked} streams; "
            f"anchors: {compared}",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"ok: {report.streams_checked} streams, {report.rows_checked} rows; anchors: {compared}")


@ledger_app.command("anchor")
def anchor_command(
    to_dir: Annotated[
        Path | None, typer.Option(help="Write a timestamped anchor file here instead of printing it.")
    ] = None,
) -> None:
    """Print every stream's head as JSON (read from the chain itself); keep it outside the database."""
    heads = run_with_pool(ledger_verify.anchor)
    if to_dir is not None:
        typer.echo(str(write_anchor(to_dir, heads)))
        return
    typer.echo(ledger_verify.HEADS.dump_json(heads, indent=2).decode())


@ledger_app.command("schedule-anchoring")
def schedule_anchoring_command(
    every_minutes: Annotated[float, typer.Option(min=1 / 60, help="How often to anchor.")] = 60.0,
) -> None:
    """Create (or re-time) the Temporal Schedule that anchors the Ledger to BOOMERANG_LEDGER_ANCHOR_DIR."""
    from boomerang.connect import connect_temporal
    from workflows.anchoring import ANCHOR_SCHEDULE_ID, ensure_anchor_schedule

    settings = Settings()

    async def main() -> None:
        client = await connect_temporal(settings)
        every = timedelta(minutes=every_minutes)
        await ensure_anchor_schedule(client, task_queue=settings.temporal_task_queue, every=every)

    asyncio.run(main())
    typer.echo(
        f"schedule {ANCHOR_SCHEDULE_ID}: every {every_minutes:g} min, to {settings.ledger_anchor_path} "
        "(written by the worker; keep BOOMERANG_LEDGER_ANCHOR_DIR out of the database operators' reach)"
    )


@ledger_app.command("show")
def show_command(run_id: Annotated[str, typer.Argument(help="The run to list.")]) -> None:
    """List a run's Ledger rows with their costs, and the total."""
    statement = run_with_pool(lambda pool: queries.ledger_for_run(pool, run_id))
    for e in statement.entries:
        cost = "" if e.total_cost is None else f"${usd_text(e.total_cost)}"
        who = " ".join(x for x in (e.provider, e.model_name, e.gpu_type) if x)
        typer.echo(f"{e.seq:>5} {e.recorded_at:%Y-%m-%d %H:%M:%S} {e.kind:<20} "
                   f"attempt={e.attempt} {cost:>12} {who}")  # fmt: skip
    typer.echo(f"total: ${usd_text(statement.total_cost)} over {len(statement.entries)} rows")


def charter_command(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    tenant: Annotated[str, typer.Option("--tenant", help="Read as this tenant.")],
) -> None:
    """Show a run's Charter exactly as its tenant sees it (row-level security applies)."""
    rows = run_with_pool(lambda pool: queries.charter_for_run(pool, run_id, tenant))
    for row in rows:
        typer.echo(json.dumps(row.model_dump(mode="json"), ensure_ascii=False))
    if not rows:
        typer.echo(f"no Charter rows for run {run_id} visible to tenant {tenant}", err=True)


def cost_command(
    run_id: Annotated[str, typer.Argument(help="The run (or standalone task) to cost.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """What a run has cost so far, by phase and specialist (every attempt counts)."""
    report = run_with_pool(lambda pool: cost_report(pool, run_id))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    typer.echo(f"{'phase / specialist':<32} {'tries':>5} {'gpu s':>9} {'gpu':>11} {'cpu':>11} "
               f"{'memory':>11} {'llm':>11} {'tokens in/out':>15} {'total':>12}")  # fmt: skip
    for x in report.lines:
        who = " / ".join(v for v in (x.phase, x.boomer_ang_id) if v) or "-"
        gpu, cpu, mem, llm, total = map(usd_text, (x.gpu_cost, x.cpu_cost, x.memory_cost, x.llm_cost,
                                                  x.total_cost))  # fmt: skip
        typer.echo(f"{who:<32} {x.attempts:>5} {x.gpu_seconds:>9.1f} {gpu:>11} {cpu:>11} "
                   f"{mem:>11} {llm:>11} {f'{x.input_tokens}/{x.output_tokens}':>15} "
                   f"{total:>12}")  # fmt: skip
    typer.echo(f"total: ${usd_text(report.total_cost)}")
