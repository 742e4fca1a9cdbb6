"""The `boomerang` command: the embedded stack, pipelines, approvals and status."""

# One module per command group in this package (see its __init__); this one puts them together.

from __future__ import annotations

import os
import sys
import warnings

import typer

from boomerang.cli import dev, runs, tasks
from boomerang.cli.api import api_command, tokens_app, webhooks_app
from boomerang.cli.doctor import doctor_command, setup_command
from boomerang.cli.gpu import gpu_app
from boomerang.cli.ledger import charter_command, cost_command, ledger_app
from boomerang.cli.sweeps import sweep_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(runs.pipeline_app, name="pipeline")
for command in (runs.decide, runs.cancel, runs.status, runs.approvals, dev.dev, dev.migrate, dev.worker):
    app.command()(command)
app.add_typer(tasks.task_app, name="task")
app.add_typer(ledger_app, name="ledger")
app.command("charter", help="What the customer sees of a run (the Charter).")(charter_command)
app.command("cost", help="What a run has cost, by phase and specialist.")(cost_command)
app.add_typer(tokens_app, name="tokens")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(gpu_app, name="gpu")
app.add_typer(sweep_app, name="sweep")
app.command("api", help="Serve the HTTP API (BOOMERANG_API_PORT, default 8787).")(api_command)
app.command("doctor", help="Check this configuration before it is used; exit 1 on a failure.")(doctor_command)
app.command("setup", help="Register search attributes (self-hosted Temporal) and apply migrations.")(
    setup_command
)


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
