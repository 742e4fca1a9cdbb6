"""Bounded in-flight compute calls, per function and per GPU class.

A burst of work must not reach the compute side all at once: 64 simultaneous calls
against a deployment sized for 8 overflowed its queue and three quarters of them
failed, while the same 64 sent 8 at a time all succeeded. Both backends therefore
take a slot before a call goes out and give it back when the call is finished::

    limits = ConcurrencyLimits(default=8, per_gpu={"A10G": 8}, per_function={"phase_4_viability": 2})
    async with limits.slot(function="crunch", gpu="A10G"):
        ...  # at most 8 calls of "crunch", and at most 8 on A10Gs across all functions

A call waits for its function's slot first, then for its GPU class's slot, then for
the overall slot; every call takes them in that same order, so no two calls can
each hold what the other waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Protocol


class SlotLimiter(Protocol):
    """What a backend takes a slot from: this module's in-process limits, or the
    Postgres-backed ones every worker shares (`activities.slots.PostgresSlots`)."""

    def slot(
        self, *, function: str, gpu: str | None = None, tenant: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]: ...


def gpu_class(gpu: str | None) -> str | None:
    """The class a Modal GPU spec belongs to: `"a10g:2"` -> `"A10G"`, `None` -> `None`.

    Modal accepts a count suffix and any case; limits are per class, so `"A10G"` and
    `"a10g:2"` share one budget (a call is one slot, whatever its GPU count).
    """
    if gpu is None or not gpu.strip():
        return None
    return gpu.split(":", 1)[0].strip().upper()


def _check(name: str, limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"{name} must be at least 1 (or None for no limit), got {limit}")


class ConcurrencyLimits:
    """In-flight limits shared by every call that goes through one backend.

    `default` bounds each function without an entry in `per_function` (`None`: no
    bound); `per_gpu` bounds each GPU class named in it, across functions; `total`
    bounds all calls together. Create one per backend, inside the running event loop's
    lifetime; it holds no resources and needs no closing.
    """

    def __init__(
        self,
        *,
        default: int | None = None,
        per_function: Mapping[str, int] | None = None,
        per_gpu: Mapping[str, int] | None = None,
        total: int | None = None,
    ) -> None:
        _check("default", default)
        _check("total", total)
        for name, limit in (per_function or {}).items():
            _check(f"per_function[{name!r}]", limit)
        gpus: dict[str, int] = {}
        for gpu, limit in (per_gpu or {}).items():
            _check(f"per_gpu[{gpu!r}]", limit)
            key = gpu_class(gpu)
            if key is None:
                raise ValueError("per_gpu keys must name a GPU class, e.g. 'A10G'")
            gpus[key] = limit
        self.default = default
        self.per_function = dict(per_function or {})
        self.per_gpu = gpus
        self.total = total
        self._functions: dict[str, asyncio.Semaphore] = {}
        self._gpus: dict[str, asyncio.Semaphore] = {}
        self._total = asyncio.Semaphore(total) if total is not None else None

    def _function_slots(self, function: str) -> asyncio.Semaphore | None:
        limit = self.per_function.get(function, self.default)
        if limit is None:
            return None
        return self._functions.setdefault(function, asyncio.Semaphore(limit))

    def _gpu_slots(self, gpu: str | None) -> asyncio.Semaphore | None:
        key = gpu_class(gpu)
        if key is None or key not in self.per_gpu:
            return None
        return self._gpus.setdefault(key, asyncio.Semaphore(self.per_gpu[key]))

    @contextlib.asynccontextmanager
    async def slot(
        self, *, function: str, gpu: str | None = None, tenant: str | None = None
    ) -> AsyncIterator[None]:
        """Hold one in-flight slot for a call of `function` on `gpu` until the block exits.

        `tenant` is accepted for the shared limiter's sake; here waiting is first come, first served.
        """
        async with contextlib.AsyncExitStack() as held:
            for slots in (self._function_slots(function), self._gpu_slots(gpu), self._total):
                if slots is not None:
                    await held.enter_async_context(slots)
            yield
