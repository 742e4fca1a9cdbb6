"""`boomerang dev`: the embedded stack, a worker, and (optionally) a demo run."""

from __future__ import annotations

import asyncio
import signal
import warnings
from urllib.parse import quote

import structlog

from boomerang.api_cli import serve_api
from boomerang.client import BoomerangClient
from boomerang.devstack import embedded_stack
from boomerang.logs import configure_logging
from boomerang.models.pipeline import PipelineInput
from boomerang.settings import Settings

log = structlog.get_logger()

DEMO_BRIEF = (
    "We build an API platform that automates billing for small clinics. "
    "Clinic managers struggle with manual insurance claims that waste hours every week "
    "and cause costly errors. We think they would pay $49 a month for automation that "
    "saves time and reduces rejected claims."
)


def instructions(ui_url: str, run_id: str | None, api_url: str | None = None) -> str:
    waiting = quote('BoomerangStatus="awaiting_approval"')
    run = run_id or "RUN_ID"
    cp = "approve_founders_brief"
    return f"""
Boomerang is running.
  Temporal UI:     {ui_url}/namespaces/default/workflows
  Waiting on you:  {ui_url}/namespaces/default/workflows?query={waiting}
{f"  Demo run:        {run_id}" if run_id else ""}
Approve the first checkpoint (any one of these):
  boomerang decide {run} {cp} approve --by alice
  temporal workflow signal --workflow-id {run} --name approve \\
      --input '{{"checkpoint":"{cp}","approver":"alice"}}'
  temporal workflow update execute --workflow-id {run} --name decide \\
      --input '{{"checkpoint":"{cp}","approver":"alice","decision":"approve"}}'
Then: boomerang status {run}   ·   boomerang approvals
{_api_lines(api_url) if api_url else ""}
Ctrl-C stops everything; running `boomerang dev` again resumes every run where it was.
"""


def _api_lines(api_url: str) -> str:
    return f"""HTTP API:        {api_url}/docs
  TOKEN=$(boomerang tokens create --tenant demo --name alice)
  curl -H "Authorization: Bearer $TOKEN" {api_url}/approvals"""


async def run_dev(settings: Settings, *, demo: bool) -> None:
    from worker import running_worker  # the worker module sits at the top level

    configure_logging(level=settings.log_level, json=settings.log_json)
    # pgserver asks platformdirs for a runtime dir that headless machines lack; harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with (
        embedded_stack(settings) as stack,
        running_worker(settings, conninfo=stack.conninfo, client=stack.client),
    ):
        run_id = None
        if demo:
            client = BoomerangClient(stack.client, task_queue=settings.temporal_task_queue)
            run_id = await client.start_pipeline(
                PipelineInput(tenant="demo", project_id="clinic-billing", brief=DEMO_BRIEF)
            )
        api = asyncio.create_task(
            serve_api(settings, conninfo=stack.conninfo, client=stack.client, stop=stop)
        )
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        print(instructions(stack.ui_url, run_id, api_url), flush=True)
        await stop.wait()
        log.info("stopping")
        await api
