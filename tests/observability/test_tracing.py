"""One trace from a front door (an HTTP request, a CLI command) to the compute function.

The worker and the client trace into an in-memory exporter; the compute process (the
local backend's subprocess) installs its own provider from the environment, as it
would in production, and writes its spans as JSON lines to BOOMERANG_TRACES_FILE.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.api import create_app
from boomerang.cli import app as cli
from boomerang.client import BoomerangClient
from boomerang.connect import connect_temporal
from boomerang.settings import Settings
from boomerang.store.costs import LedgerCosts
from boomerang.store.queries import Pool
from boomerang.store.tokens import ApiRole, create_token
from modal_app.telemetry import TRACES_FILE_ENV, tracing_enabled, with_trace_context
from tests.helpers import wait_for_checkpoint
from worker import build_worker

COMPUTE = "phase_0_onboarding"
BRIEF = "Invoices take clinics hours every week (TRACED-BRIEF-51c2)."


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """This process traces into memory for one test (the global provider, as `main()` sets it)."""
    assert not isinstance(trace.get_tracer_provider(), TracerProvider), "a provider leaked from elsewhere"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    # The API allows one global provider per process; put the default back for later tests.
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()


@asynccontextmanager
async def traced_worker(
    dev_env: WorkflowEnvironment, events: EventSink, pool: Pool, settings: Settings
) -> AsyncIterator[BoomerangClient]:
    # connect_temporal adds the tracing interceptor because a provider is installed; the
    # worker built on that client inherits it. A fresh backend: its compute processes
    # start now, with BOOMERANG_TRACES_FILE in their environment.
    client = await connect_temporal(settings)
    backend = LocalBackend(max_concurrency=1)
    try:
        worker = build_worker(
            client,
            task_queue=settings.temporal_task_queue,
            backend=backend,
            events=events,
            costs=LedgerCosts(pool),
        )
        async with worker:
            yield BoomerangClient(client, task_queue=settings.temporal_task_queue)
    finally:
        await backend.aclose()


async def _kickoff_over_http(boomerang: BoomerangClient, pool: Pool, settings: Settings) -> str:
    tenant = f"trace-{uuid.uuid4().hex[:8]}"
    token = (await create_token(pool, tenant=tenant, role=ApiRole.APPROVER, name="alice")).token
    app = create_app(client=boomerang, pool=pool, settings=settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as api:
        kicked = await api.post(
            "/kickoff",
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            json={"project_id": "traced", "brief": BRIEF},
        )
    assert kicked.status_code == 202, kicked.text
    return str(kicked.json()["run_id"])


async def _start_from_the_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BOOMERANG_TEMPORAL_ADDRESS", settings.temporal_address)
    monkeypatch.setenv("BOOMERANG_TEMPORAL_NAMESPACE", settings.temporal_namespace)
    monkeypatch.setenv("BOOMERANG_TEMPORAL_TASK_QUEUE", settings.temporal_task_queue)
    argv = ["pipeline", "start", "--tenant", "acme", "--project-id", "traced", "--brief", BRIEF]
    # The command runs its own event loop (asyncio.run), so it gets a thread of its own.
    result = await asyncio.to_thread(CliRunner().invoke, cli, argv)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def _hex(value: int, digits: int) -> str:
    return f"0x{value:0{digits}x}"


def _ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[int]:
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    chain: list[int] = []
    while span.parent is not None:
        chain.append(span.parent.span_id)
        if span.parent.span_id not in by_id:
            break
        span = by_id[span.parent.span_id]
    return chain


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    named = [s for s in spans if s.name == name]
    assert len(named) == 1, (name, [s.name for s in spans])
    return named[0]


@pytest.mark.parametrize("door", ["http", "cli"])
async def test_one_trace_from_the_front_door_to_the_compute_function(
    door: str,
    spans: InMemorySpanExporter,
    dev_env: WorkflowEnvironment,
    event_store: EventSink,
    store_pool: Pool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compute_file = tmp_path / "compute-spans.jsonl"
    monkeypatch.setenv(TRACES_FILE_ENV, str(compute_file))
    settings = Settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        temporal_namespace=dev_env.client.namespace,
        temporal_task_queue=f"tq-{uuid.uuid4().hex}",
    )
    async with traced_worker(dev_env, event_store, store_pool, settings) as boomerang:
        if door == "http":
            run_id = await _kickoff_over_http(boomerang, store_pool, settings)
        else:
            run_id = await _start_from_the_cli(settings, monkeypatch)
        # Phase 0 has been dispatched, computed and recorded once its checkpoint opens.
        await wait_for_checkpoint(boomerang, run_id, "approve_founders_brief")
        await boomerang.temporal.get_workflow_handle(run_id).terminate("the trace is complete")

    finished = list(spans.get_finished_spans())
    root = _one(finished, "POST /kickoff" if door == "http" else "boomerang pipeline start")
    assert root.parent is None
    assert root.context is not None
    trace_id = root.context.trace_id
    in_trace = [s for s in finished if s.context is not None and s.context.trace_id == trace_id]
    start = _one(in_trace, "StartWorkflow:ValidationPipeline")
    # Under the request's span (FastAPI's endpoint span between them) or the command's.
    assert root.context.span_id in _ancestors(start, in_trace)
    names = {s.name for s in in_trace}
    assert {"RunWorkflow:ValidationPipeline", "StartActivity:dispatch", "RunActivity:dispatch"} <= names
    dispatch = _one(in_trace, "RunActivity:dispatch")
    assert dispatch.context is not None
    if door == "http":
        assert root.attributes is not None
        assert root.attributes["http.route"] == "/kickoff"
        assert root.attributes["http.response.status_code"] == 202
    # Identifiers only: no brief (or token, which only travels in a header) on any span.
    assert not [s.name for s in finished if BRIEF in str(dict(s.attributes or {}))]

    # The compute process's span: same trace, child of the dispatch activity's span.
    lines: list[dict[str, Any]] = [json.loads(line) for line in compute_file.read_text().splitlines()]
    [computed] = [s for s in lines if s["name"] == f"compute {COMPUTE}"]
    assert computed["context"]["trace_id"] == _hex(trace_id, 32)
    assert computed["parent_id"] == _hex(dispatch.context.span_id, 16)
    assert computed["attributes"] == {"function": COMPUTE}
    assert computed["resource"]["attributes"]["service.name"] == "boomerang-compute"


def test_tracing_is_off_unless_the_environment_says_where_spans_go() -> None:
    assert not tracing_enabled({})
    assert tracing_enabled({"BOOMERANG_TRACING": "true"})
    assert tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing_enabled({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert not tracing_enabled({"BOOMERANG_TRACING": "true", "OTEL_SDK_DISABLED": "true"})
    assert not tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"})


def test_without_a_span_the_payload_goes_unchanged() -> None:
    payload = {"run_id": "r", "brief": "b"}
    assert with_trace_context(payload) == payload
