"""A PostgreSQL for development and tests, from the `pgserver` wheel.

`boomerang dev` and the test suite need a real PostgreSQL without Docker or a
system install: pgserver ships the binaries in a wheel, initialises a data
directory once and listens on a unix socket only. Production sets DATABASE_URL
and never starts one.

    pg = start_embedded_postgres(Path(".boomerang/postgres"))
    ...  # use pg.conninfo
    pg.stop()
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boomerang.errors import BoomerangError
from boomerang.settings import Settings


@dataclass(frozen=True, slots=True)
class EmbeddedPostgres:
    """A running embedded server; `stop()` shuts it down (its data stays)."""

    data_dir: Path
    conninfo: str
    _server: Any

    def stop(self) -> None:
        """Stop the server unless another live process still uses it.

        pgserver counts its users in a pid list on disk and stops the server when the
        last one leaves; a process that ends without its atexit hook (os._exit, as the
        CLI does, or a kill) stays on that list for ever and the server would never be
        stopped. Dead pids are dropped first, so the last live user really stops it.
        """
        server = self._server
        with server._lock:
            handles = server.global_process_id_list
            live = [pid for pid in handles.get() if _alive(pid)]
            handles.put(live)
        server.cleanup()
        if not set(live) - {os.getpid()}:  # it was stopped: reap it if it is our child
            _reap(server.get_pid())


def _reap(pid: int | None, *, timeout_s: float = 10.0) -> None:
    """Collect the stopped postmaster's exit status, so it is not left <defunct>.

    pg_ctl daemonizes the server: it is our child only when this process is a child
    subreaper (as `boomerang dev` makes itself); otherwise this returns at once.
    """
    if pid is None:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done == pid:
            return
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


class EmbeddedPostgresError(BoomerangError, RuntimeError):
    """The embedded PostgreSQL did not start; the message names its log."""


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (initialising on first use) the server whose data lives in `data_dir`.

    Blocking, for a few seconds on first use: call it through `asyncio.to_thread`
    from async code. Reuses a server already running on that directory.
    """
    try:
        import pgserver  # heavy import, only where an embedded server is wanted
    except ImportError:
        raise EmbeddedPostgresError(
            "the embedded PostgreSQL needs the pgserver wheel: pip install 'boomerang[embedded]' "
            "(or set DATABASE_URL to a PostgreSQL server)"
        ) from None

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    get_server = pgserver.get_server  # type: ignore[attr-defined]
    try:
        server = get_server(str(data_dir), cleanup_mode="stop")
    except subprocess.TimeoutExpired:
        # pgserver gives `pg_ctl start` 10 s, and on a loaded machine it may give up on
        # a server that came up after all: a second try adopts a running one.
        _forget(data_dir)
        try:
            server = get_server(str(data_dir), cleanup_mode="stop")
        except (subprocess.SubprocessError, OSError):
            _forget(data_dir)
            _stop_leftover(data_dir)
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL did not start; see {data_dir / 'log'}"
            ) from None
    return EmbeddedPostgres(data_dir=data_dir, conninfo=str(server.get_uri()), _server=server)


def _forget(data_dir: Path) -> None:
    """Drop pgserver's cached handle of a failed start, so the next try starts afresh."""
    from pgserver.postgres_server import PostgresServer

    PostgresServer._instances.pop(data_dir, None)


def _stop_leftover(data_dir: Path) -> None:
    """Stop whatever a failed start left running on `data_dir` (nothing may outlive us)."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    with contextlib.suppress(subprocess.SubprocessError, OSError):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, timeout=30)


def resolve_conninfo(settings: Settings) -> str:
    """DATABASE_URL when set; otherwise the embedded server under the state directory.

    pgserver shares one server between every process using that directory and
    stops it when the last of them exits, so callers need not stop it. The
    result may hold a password: never log it.
    """
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return start_embedded_postgres(settings.state_dir / "postgres").conninfo
