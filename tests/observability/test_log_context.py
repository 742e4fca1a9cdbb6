"""Every line written inside an activity names its run, workflow, activity, attempt and
tenant; workflow lines name their run and workflow; secrets stay redacted."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.logs import REDACTED, redact_secrets, stdlib_formatter
from boomerang.models.tasks import Attribution, DispatchInput
from boomerang.observability.log_context import LogContextInterceptor
from tests.observability.logged import LoggingWorkflow, log_lines
from worker import build_worker

TENANT = "tenant-logs"


@pytest.fixture
def stdlib_json() -> Iterator[io.StringIO]:
    """Standard-library records as the worker writes them with BOOMERANG_LOG_JSON=true."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(stdlib_formatter(json=True))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


async def test_activity_lines_carry_run_activity_attempt_and_tenant(
    dev_env: WorkflowEnvironment, stdlib_json: io.StringIO
) -> None:
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    task_queue = f"tq-{uuid.uuid4().hex}"
    inp = DispatchInput(
        function="phase_0_onboarding",
        payload={},
        timeout_s=30,
        attribution=Attribution(run_id=run_id, tenant=TENANT),
    )
    with capture_logs(processors=[structlog.contextvars.merge_contextvars, redact_secrets]) as lines:
        async with Worker(
            dev_env.client,
            task_queue=task_queue,
            workflows=[LoggingWorkflow],
            activities=[log_lines],
            interceptors=[LogContextInterceptor()],
        ):
            await dev_env.client.execute_workflow(
                LoggingWorkflow.run, inp, id=f"wf-{run_id}", task_queue=task_queue
            )
    bound = {"run_id": run_id, "workflow": "LoggingWorkflow", "activity": "log_lines", "attempt": 1}
    [line] = [e for e in lines if e["event"] == "from structlog"]
    assert line == {
        "event": "from structlog", "log_level": "info", "function": "phase_0_onboarding",
        "api_key": REDACTED, "tenant": TENANT, **bound,
    }  # fmt: skip

    records: list[dict[str, Any]] = [json.loads(x) for x in stdlib_json.getvalue().splitlines()]
    [stdlib] = [r for r in records if r["event"].startswith("from the standard library")]
    assert {k: stdlib[k] for k in [*bound, "tenant"]} == {**bound, "tenant": TENANT}
    assert "tok_not_for_logs" not in stdlib["event"] and REDACTED in stdlib["event"]
    assert stdlib["logger"] == "temporalio.activity"
    # workflow.logger's extra names the run (the workflow id) and the workflow.
    [from_workflow] = [r for r in records if r["event"].startswith("from the workflow")]
    assert (from_workflow["run_id"], from_workflow["workflow"]) == (f"wf-{run_id}", "LoggingWorkflow")
    assert "activity" not in from_workflow


async def test_the_worker_binds_log_context(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    worker = build_worker(dev_env.client, task_queue="tq-unused", backend=backend, events=event_store)
    assert any(isinstance(i, LogContextInterceptor) for i in worker.config()["interceptors"])
