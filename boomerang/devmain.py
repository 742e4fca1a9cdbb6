"""`boomerang dev`: the embedded stack, a worker, the HTTP API and (optionally) a demo run.

    asyncio.run(run_dev(settings, demo=True))   # DevStackError: one line for the user

Every port is checked before anything starts. Once running, the first part to stop
(the Temporal child, the API, the worker) stops all the others, and so does SIGINT or
SIGTERM, at any moment, startup included: each part stops what it started, the
embedded PostgreSQL included, and every child is reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import warnings

import structlog

from boomerang.api.serve import serve_api
from boomerang.client import BoomerangClient
from boomerang.devbanner import Banner
from boomerang.devdemo import ensure_demo_run
from boomerang.devstack import (
    DevStackError,
    Stack,
    become_subreaper,
    bind_port,
    check_ports,
    dev_ports,
    embedded_stack,
    reap_children,
)
from boomerang.logs import configure_logging
from boomerang.observability.tracing import configure_tracing
from boomerang.settings import Settings
from boomerang.webhooks.urls import LOOPBACK_HOSTS

log = structlog.get_logger()

# How often the running stack looks at its parts; a dead part is noticed within this.
_WATCH_S = 0.5


def dev_settings(
    settings: Settings, *, temporal_port: int | None, ui_port: int | None, api_port: int | None
) -> Settings:
    """`settings` with the ports given as `boomerang dev` flags (None: as configured)."""
    changes: dict[str, object] = {}
    if temporal_port is not None:
        host = settings.temporal_address.rpartition(":")[0] or "127.0.0.1"
        changes["temporal_address"] = f"{host}:{temporal_port}"
    if ui_port is not None:
        changes["temporal_ui_port"] = ui_port
    if api_port is not None:
        changes["api_port"] = api_port
    # On a laptop, webhooks may go to a receiver on this machine, over http; the
    # environment's own choice (BOOMERANG_WEBHOOK_ALLOW_HOSTS / _REQUIRE_HTTPS) wins.
    if "webhook_allow_hosts" not in settings.model_fields_set:
        changes["webhook_allow_hosts"] = ",".join(LOOPBACK_HOSTS)
    if "webhook_require_https" not in settings.model_fields_set:
        changes["webhook_require_https"] = False
    return settings.model_copy(update=changes)


async def run_dev(settings: Settings, *, demo: bool) -> None:
    """Run until SIGINT/SIGTERM; raise DevStackError if it cannot start or a part stops."""
    needs = dev_ports(settings)
    check_ports(needs)  # before anything starts, so a taken port is one line and no cleanup
    api_sock = bind_port(needs[-1])  # held from now on, so nothing can take it meanwhile
    become_subreaper()
    configure_logging(level=settings.log_level, json=settings.log_json)
    configure_tracing("boomerang-dev")
    # pgserver asks platformdirs for a runtime dir that headless machines lack; harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    stop, running = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    body = asyncio.create_task(_run(settings, demo=demo, api_sock=api_sock, stop=stop, running=running))
    try:
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({body, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not running.is_set():
            # Stopped while starting: cancel the start; each part stops what it began.
            body.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await body
    except DevStackError:
        raise
    except Exception as exc:  # an unexpected failure of a part: all parts have stopped
        log.error("boomerang dev failed", exc_info=exc)
        raise DevStackError(f"stopped: {type(exc).__name__}: {exc}") from None
    finally:
        api_sock.close()
        reap_children()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _run(
    settings: Settings, *, demo: bool, api_sock: socket.socket, stop: asyncio.Event, running: asyncio.Event
) -> None:
    from worker import running_worker  # the worker module sits at the top level

    async with (
        embedded_stack(settings) as stack,
        running_worker(settings, conninfo=stack.conninfo, client=stack.client),
    ):
        client = BoomerangClient(stack.client, task_queue=settings.temporal_task_queue)
        demo_run = await ensure_demo_run(client, settings.state_dir.resolve()) if demo else None
        api_stop, failure = asyncio.Event(), None
        api = asyncio.create_task(
            serve_api(settings, conninfo=stack.conninfo, client=stack.client, stop=api_stop, sock=api_sock)
        )
        try:
            await _api_listening(api, settings)
            banner = Banner(
                ui_url=stack.ui_url,
                api_url=f"http://{settings.api_host}:{settings.api_port}",
                temporal_address=settings.temporal_address,
                state_dir=settings.state_dir,
                demo=demo_run,
            )
            print(banner.render(), flush=True)
            running.set()
            failure = await _watch(stack, api, stop)
        finally:
            api_stop.set()
            with contextlib.suppress(Exception):
                await api
        log.info("stopping")
    if failure is not None:
        raise DevStackError(failure)


async def _api_listening(api: asyncio.Task[None], settings: Settings, *, timeout_s: float = 30) -> None:
    """Return once the API accepts connections; raise if it stopped or never did."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not api.done():
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(settings.api_host, settings.api_port)
            writer.close()
            return
        if asyncio.get_running_loop().time() > deadline:
            raise DevStackError(f"the HTTP API did not start listening within {timeout_s:.0f}s")
        await asyncio.sleep(0.1)
    raise DevStackError(f"the HTTP API stopped at start: {_why(api)}")


async def _watch(stack: Stack, api: asyncio.Task[None], stop: asyncio.Event) -> str | None:
    """Wait for a signal (None) or for a part to stop (why, in one line).

    A fatal worker error needs no watching: the worker cancels this task and its
    `async with` raises the error."""
    while not stop.is_set():
        code = stack.temporal_exit_code()
        if code is not None:
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"status {code}"
            log_path = stack.temporal_log
            return f"the Temporal dev server exited ({how}); everything was stopped; see {log_path}"
        if api.done():
            return f"the HTTP API stopped ({_why(api)}); everything was stopped"
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_WATCH_S):
                await stop.wait()
    return None


def _why(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    return "it returned" if exc is None else f"{type(exc).__name__}: {exc}"
