"""Local compute: the `modal_app` function bodies, run in warm worker processes here.

Each call borrows an idle process (or starts one), sends it the payload, and waits
without blocking the event loop. A call that overruns its timeout or whose activity
is cancelled has its process killed, so the work really stops; the next call starts
a fresh process.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from activities.compute import ComputeError, ComputeTimeoutError
from activities.limits import ConcurrencyLimits, SlotLimiter
from modal_app.functions import UnknownFunctionError
from modal_app.registry import MODULES_ENV, Registry, load_registry

# Replies carry whole phase outputs; the default 64 KiB line limit is too small.
_LINE_LIMIT = 64 * 1024 * 1024


class _Process:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, modules: tuple[str, ...]) -> _Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "modal_app.local_runner",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
            # The process builds its registry from the worker's own list of user modules.
            env={**os.environ, MODULES_ENV: ",".join(modules)},
        )
        return cls(proc)

    async def request(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("compute process started without pipes")
        stdin.write(json.dumps({"name": name, "payload": payload}).encode() + b"\n")
        await stdin.drain()
        line = await stdout.readline()
        if not line:
            raise ComputeError(
                f"{name}: the compute process exited (code {await self.proc.wait()})",
                error_type="ProcessExited",
                permanent=False,
            )
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            await self.kill()


class LocalBackend:
    """Runs compute functions in up to `max_concurrency` local processes."""

    def __init__(
        self,
        *,
        max_concurrency: int = 4,
        limits: SlotLimiter | None = None,
        registry: Registry | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._slots = asyncio.Semaphore(max_concurrency)
        self._limits: SlotLimiter = limits or ConcurrencyLimits()
        self.registry = registry or load_registry()
        self._idle: list[_Process] = []

    def _gpu_of(self, name: str) -> str | None:
        try:
            return self.registry.lookup(name).gpu
        except UnknownFunctionError:
            return None  # the compute process reports the unknown name as a permanent error

    async def call(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        timeout_s: float,
        heartbeat_every_s: float | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Run `name` in a compute process; the dispatcher heartbeats for it (every
        `heartbeat_every_s`), so this ignores it."""
        # The per-function/GPU limit first, so a call waiting on it holds no process.
        async with self._limits.slot(function=name, gpu=self._gpu_of(name), tenant=tenant), self._slots:
            process = self._idle.pop() if self._idle else await _Process.start(self.registry.modules)
            try:
                reply = await asyncio.wait_for(process.request(name, payload), timeout_s)
            except TimeoutError:
                await asyncio.shield(process.kill())
                raise ComputeTimeoutError(name, timeout_s) from None
            except BaseException:
                # Cancelled or broken: the process may be mid-call; stop it for real.
                await asyncio.shield(process.kill())
                raise
            self._idle.append(process)
        if "ok" in reply:
            return dict(reply["ok"])
        error = reply["error"]
        raise ComputeError(
            f"{name} failed: {error['type']}: {error['message']}",
            error_type=error["type"],
            permanent=bool(error["permanent"]),
            traceback=error["traceback"],
        )

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(p.stop() for p in idle))
