"""A double of Modal's remote service, behind the SDK's public call surface.

Most Modal tests run the real SDK client against the local servicer of Modal's gRPC
API (tests/modal_servicer/). This double stays for what that cannot do, or not
cheaply, in test_modal_backend.py:

- the backend's whole error-mapping table: any exception class the SDK may raise
  (`ExecutionError`, `VersionError`, `InputCancellation`, a body's own exception
  re-raised, ...), including ones only a real container or a newer server produce;
- a spawn whose reply is withheld after the call exists (cancelled mid-spawn), and
  heartbeat hooks that die at a chosen moment;
- bursts of 64 calls of a chosen duration against a capacity, in milliseconds.

`RemoteService` hands out objects shaped like `modal.Function` (`spawn.aio`) and
`modal.FunctionCall` (`object_id`, `get.aio(timeout=)`, `cancel.aio()`), and runs the
*real* function bodies (`Registry.call`) in a thread, so results are what
Modal would return. It behaves like the real service where the backend depends on it:

- `get` raises the builtin `TimeoutError` while a call runs (what Modal 1.6 does);
- a call that arrives while `capacity` calls are running is refused with
  `ResourceExhaustedError`, like the overloaded queue in seed 003;
- a cancelled call ends as a terminated input: `get` raises an empty `RemoteError`;
- an unknown call id raises `NotFoundError` at `get`; an undeployed name at `spawn`.

It counts spawns and polls, records cancellations and peak concurrency, and can fail in each
of Modal's ways: at spawn (`spawn_error`), as the call's outcome (`outcome_error`),
or while polling a call that keeps running (`poll_errors`). `await until(...)` waits
for a condition instead of sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import modal.exception as mx

from modal_app.registry import builtin_registry

Body = Callable[[str, dict[str, Any]], Any]
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class _Method(Generic[F]):
    """How the SDK exposes an async method: `obj.method.aio(...)`."""

    def __init__(self, aio: F) -> None:
        self.aio = aio


@dataclass
class FakeCall:
    """One spawned input, as `modal.FunctionCall` shows it."""

    object_id: str
    function: str
    service: RemoteService
    done: asyncio.Event = field(default_factory=asyncio.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    outcome: Any = None

    def __post_init__(self) -> None:
        self.get = _Method(self._get)
        self.cancel = _Method(self._cancel)

    async def _get(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (Modal's signature)
        return await self.service.poll(self, timeout)

    async def _cancel(self) -> None:
        await self.service.cancel_call(self)


@dataclass
class FakeFunction:
    name: str
    service: RemoteService

    def __post_init__(self) -> None:
        self.spawn = _Method(self._spawn)

    async def _spawn(self, payload: dict[str, Any], /) -> FakeCall:
        return await self.service.spawn(self.name, payload)


class RemoteService:
    """The remote side: deployed functions, their running calls and their capacity."""

    def __init__(
        self,
        *,
        capacity: int | None = None,
        duration_s: float = 0.0,
        held: bool = False,
        body: Body | None = None,
        deployed: Iterable[str] | None = None,
    ) -> None:
        """`duration_s`: how long each call runs before its body; `held`: calls wait
        for `release()` instead; `deployed`: names `spawn` accepts (default: all)."""
        self.capacity = capacity
        self.duration_s = duration_s
        self.held = held
        # The real bodies, through the same registry the backend plans with.
        self.body = body or builtin_registry().call
        self.deployed = set(deployed) if deployed is not None else None
        self.spawn_error: BaseException | None = None
        self.outcome_error: BaseException | None = None
        self.poll_errors: list[BaseException] = []
        # While clear, a spawn has created its call but its reply has not arrived yet.
        self.spawn_reply = asyncio.Event()
        self.spawn_reply.set()
        self.calls: dict[str, FakeCall] = {}
        self.spawns = 0
        self.polls = 0
        self.rejected = 0
        self.cancelled: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the lookups the backend is given ------------------------------------------------

    def function(self, app_name: str, name: str) -> FakeFunction:
        return FakeFunction(name, self)

    def call(self, call_id: str) -> FakeCall:
        known = self.calls.get(call_id)
        return known if known is not None else FakeCall(call_id, "?", self)

    # -- test controls ---------------------------------------------------------------------

    def release(self) -> None:
        """Let held calls run to completion."""
        self.held = False
        for call in self.calls.values():
            call.wake.set()

    async def aclose(self) -> None:
        """End every call (held ones too) so no thread outlives the test."""
        for call in self.calls.values():
            call.cancelled = True
            call.wake.set()
        await asyncio.gather(*self._tasks)

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition()` holds; it is checked whenever the service changes."""
        async with self._changed:
            await self._changed.wait_for(condition)

    # -- the service itself ----------------------------------------------------------------

    async def spawn(self, name: str, payload: dict[str, Any]) -> FakeCall:
        if self.spawn_error is not None:
            raise self.spawn_error
        if self.deployed is not None and name not in self.deployed:
            raise mx.NotFoundError(f"Lookup failed for Function '{name}' from the 'boomerang' app")
        if self.capacity is not None and self.in_flight >= self.capacity:
            self.rejected += 1
            await self._notify()
            raise mx.ResourceExhaustedError(f"queue full: {self.in_flight} inputs running")
        self.spawns += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        call = FakeCall(f"fc-{next(self._ids):06d}", name, self)
        self.calls[call.object_id] = call
        task = asyncio.create_task(self._run(call, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await self._notify()
        await self.spawn_reply.wait()
        return call

    async def poll(self, call: FakeCall, timeout: float | None) -> Any:  # noqa: ASYNC109
        if call.object_id not in self.calls:
            raise mx.NotFoundError(f"Function call {call.object_id} not found")
        self.polls += 1
        await self._notify()
        if self.poll_errors:
            raise self.poll_errors.pop(0)
        try:
            await asyncio.wait_for(call.done.wait(), timeout)
        except TimeoutError:
            raise TimeoutError from None
        if isinstance(call.outcome, BaseException):
            raise call.outcome
        return call.outcome

    async def cancel_call(self, call: FakeCall) -> None:
        if call.object_id not in self.calls:
            raise mx.NotFoundError(f"Function call {call.object_id} not found")
        self.cancelled.append(call.object_id)
        call.cancelled = True
        call.wake.set()
        await self._notify()

    async def _run(self, call: FakeCall, payload: dict[str, Any]) -> None:
        try:
            call.outcome = await asyncio.to_thread(self._work, call, payload)
        except Exception as exc:  # the body raised: Modal re-raises it at `get`
            call.outcome = exc
        finally:
            # Capacity frees before the result is visible, as on the real service.
            self.in_flight -= 1
            call.done.set()
            await self._notify()

    def _work(self, call: FakeCall, payload: dict[str, Any]) -> Any:
        call.wake.wait(None if self.held else self.duration_s)
        if call.cancelled:
            return mx.RemoteError("")  # a terminated input carries no detail
        if self.outcome_error is not None:
            return self.outcome_error
        return self.body(call.function, payload)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
