"""The Boomerang worker: settings -> Postgres pool -> compute backend -> Temporal worker.

    python worker.py            # DATABASE_URL and BOOMERANG_* from the environment

`boomerang dev` runs the same worker inside the embedded stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, NoReturn

import structlog
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.anchoring import AnchorActivities
from activities.budget import BudgetActivities, CostReader
from activities.compute import ComputeBackend
from activities.dispatch import DispatchActivities, Dispatcher
from activities.gpu_runs import GpuRunActivities
from activities.limits import ConcurrencyLimits, SlotLimiter
from activities.local_backend import LocalBackend
from activities.notify import NotifyActivities
from activities.records import EventSink, RecordActivities
from activities.slots import PostgresSlots
from activities.sweep_results import SweepActivities
from activities.tasks import TaskActivities
from activities.webhooks import WebhookActivities
from boomerang.artifacts import ArtifactStore, artifact_store_from_settings
from boomerang.connect import connect_temporal
from boomerang.logs import configure_logging
from boomerang.observability.health import Pool, readiness, serving_health
from boomerang.observability.log_context import LogContextInterceptor
from boomerang.observability.metrics import ObservedEvents, WorkerMetrics
from boomerang.observability.temporal_runtime import TemporalTelemetry
from boomerang.observability.tracing import configure_tracing
from boomerang.pricing import PriceTable, load_price_table
from boomerang.settings import ComputeBackendName, Settings
from boomerang.store.costs import LedgerCosts
from boomerang.store.recorder import EventStore, open_pool
from boomerang.store.sweeps import SweepResults
from modal_app.registry import load_registry, parse_modules
from workflows.anchoring import AnchorLedger
from workflows.gpu_run import GpuRun
from workflows.notify import NotifyApprovers
from workflows.pipeline import ValidationPipeline
from workflows.sweep import Sweep
from workflows.task import BoomerAngTask
from workflows.warm_policy import GpuWarmPolicy
from workflows.webhooks import DeliverWebhook

log = structlog.get_logger()


# Every Boomerang workflow; a worker that runs workflows runs all of them.
GPU_WORKFLOWS = [GpuRun, GpuWarmPolicy]  # `boomerang gpu exec` (activities: GpuRunActivities)
WORKFLOWS = [ValidationPipeline, BoomerAngTask, DeliverWebhook, AnchorLedger, Sweep, NotifyApprovers]


def build_activities(
    backend: ComputeBackend,
    events: EventSink,
    *,
    prices: PriceTable | None = None,
    costs: CostReader | None = None,
    webhooks: WebhookActivities | None = None,
    anchoring: AnchorActivities | None = None,
    sweeps: tuple[SweepResults, ArtifactStore] | None = None,
    notify: NotifyActivities | None = None,
) -> list[Callable[..., Any]]:
    """Every Boomerang activity, bound to its dependencies; `prices` defaults to the packaged table.

    Planning, budgets and dispatch use the backend's registry: what is planned is what runs.
    """
    prices = prices or load_price_table(env={})
    registry = backend.registry
    dispatcher = Dispatcher(backend, events, prices, registry)
    return [
        DispatchActivities(dispatcher).dispatch,
        TaskActivities(prices, registry).plan_task,
        BudgetActivities(costs or _NoLedger(), prices, registry).check_budget,
        RecordActivities(events).record_events,
        # Without `webhooks`, a run with a webhook URL starts a delivery no worker can make.
        *(webhooks.activities if webhooks is not None else []),
        *(anchoring.activities if anchoring is not None else []),
        # Slack and e-mail notices; unconfigured channels answer "skipped".
        *(notify or NotifyActivities()).activities,
        # Sweep items write their rows to Postgres and large outputs to the artifact store.
        *(
            SweepActivities(
                sweeps[0], sweeps[1], dispatcher, registry, prices, costs or _NoLedger()
            ).activities
            if sweeps is not None
            else []
        ),
    ]


def build_worker(
    client: Client,
    *,
    task_queue: str,
    backend: ComputeBackend,
    events: EventSink,
    prices: PriceTable | None = None,
    costs: CostReader | None = None,
    webhooks: WebhookActivities | None = None,
    anchoring: AnchorActivities | None = None,
    sweeps: tuple[SweepResults, ArtifactStore] | None = None,
    gpu_runs: GpuRunActivities | None = None,
    notify: NotifyActivities | None = None,
) -> Worker:
    """A worker for every Boomerang workflow and activity."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[*WORKFLOWS, *GPU_WORKFLOWS],
        activities=build_activities(
            backend,
            events,
            prices=prices,
            costs=costs,
            webhooks=webhooks,
            anchoring=anchoring,
            sweeps=sweeps,
            notify=notify,
        )
        + (gpu_runs.activities if gpu_runs is not None else []),
        # Cancellation and heartbeats must reach activities promptly after a stop.
        graceful_shutdown_timeout=timedelta(seconds=5),
        # Each activity's log lines name its run, activity, attempt and tenant.
        interceptors=[LogContextInterceptor()],
    )


class _NoLedger:
    async def cost_to_date(self, run_id: str) -> Decimal:
        raise ApplicationError(
            "this worker was built without a Ledger to read spend from; budgets need one",
            type="NoLedger",
            non_retryable=True,
        )


def build_backend(settings: Settings, *, pool: Pool | None = None) -> ComputeBackend:
    """The configured backend, over the registry of the built-ins and `settings.compute_modules`.

    With `pool`, in-flight limits are held in Postgres for every worker and granted
    fairly between tenants (`activities.slots`); without, they bound this process only.
    """
    registry = load_registry(parse_modules(settings.compute_modules))
    bounds = ConcurrencyLimits(
        default=settings.compute_max_in_flight,
        per_function=settings.compute_function_limits,
        per_gpu=settings.compute_gpu_limits,
    )
    limits: SlotLimiter = bounds if pool is None else PostgresSlots(pool, bounds)
    if settings.compute_backend is ComputeBackendName.MODAL:
        # Imported here: `import modal` costs a local-only worker most of a second.
        from activities.modal_backend import ModalBackend

        return ModalBackend(
            app_name=settings.modal_app_name, limits=limits, poll_s=settings.modal_poll_s, registry=registry
        )
    return LocalBackend(max_concurrency=settings.local_max_concurrency, limits=limits, registry=registry)


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings,
    *,
    conninfo: str,
    client: Client | None = None,
    telemetry: TemporalTelemetry | None = None,
) -> AsyncIterator[Worker]:
    """A started worker with its pool and backend; everything is closed on exit.

    Boomerang's metrics count every event it records; with `telemetry` (whose runtime
    `client` was connected with) the Temporal SDK's metrics join them. They are served
    with /livez and /readyz on BOOMERANG_WORKER_METRICS_PORT when it is set.
    """
    client = client or await connect_temporal(settings, runtime=telemetry.runtime if telemetry else None)
    pool = await open_pool(conninfo)
    backend = build_backend(settings, pool=pool)
    metrics = WorkerMetrics(
        backend=settings.compute_backend.value, tenant_labels=settings.metrics_tenant_labels
    )
    if telemetry is not None and telemetry.collector is not None:
        metrics.registry.register(telemetry.collector)
    try:
        events = ObservedEvents(EventStore(pool), metrics, pool=pool)
        worker = build_worker(
            client,
            task_queue=settings.temporal_task_queue,
            backend=backend,
            events=events,
            prices=load_price_table(settings.price_table, env={}),
            costs=LedgerCosts(pool),
            webhooks=WebhookActivities.from_settings(settings, pool=pool, events=events),
            anchoring=AnchorActivities(pool, settings.ledger_anchor_path),
            notify=NotifyActivities.from_settings(settings),
            sweeps=(SweepResults(pool), artifact_store_from_settings(settings)),
            gpu_runs=GpuRunActivities(
                store=artifact_store_from_settings(settings),
                state_dir=settings.state_dir,
                backend=settings.compute_backend.value,
                modal_app_name=settings.modal_app_name,
                prices=load_price_table(settings.price_table, env={}),
            ),
        )
        async with worker, _serving_health(settings, metrics, client, pool):
            log.info(
                "worker started",
                task_queue=settings.temporal_task_queue,
                address=settings.temporal_address,
                compute=settings.compute_backend.value,
            )
            yield worker
    finally:
        await backend.aclose()
        await pool.close()


@contextlib.asynccontextmanager
async def _serving_health(
    settings: Settings, metrics: WorkerMetrics, client: Client, pool: Pool
) -> AsyncIterator[None]:
    if not settings.worker_metrics_port:
        yield
        return
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    async with serving_health(metrics.registry, ready=readiness(client, pool), host=host, port=port):
        log.info("worker metrics and probes served", url=f"http://{host}:{port}/metrics")
        yield


async def serve(settings: Settings, *, conninfo: str, telemetry: TemporalTelemetry | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(settings, conninfo=conninfo, telemetry=telemetry):
        await stop.wait()
    log.info("worker stopped")


def main() -> None:
    settings = Settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    configure_tracing("boomerang-worker")  # off unless OTEL_* / BOOMERANG_TRACING say otherwise
    if settings.database_url is None:
        raise SystemExit("DATABASE_URL is not set; use `boomerang dev` for the embedded stack")
    # The process's one Runtime: SDK metrics beside Boomerang's, core logs in our format.
    telemetry = TemporalTelemetry(metrics=settings.worker_metrics_port != 0)
    asyncio.run(serve(settings, conninfo=settings.database_url.get_secret_value(), telemetry=telemetry))


def _main_exiting_hard() -> NoReturn:
    """main(), then leave with its status before the interpreter finalizes: temporalio
    can abort there (sdk-python #300) and replace a clean stop with a crash line."""
    code = 0
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            log.error(exc.code)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _main_exiting_hard()
