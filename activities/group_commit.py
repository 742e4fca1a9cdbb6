"""Writes that arrive within a few milliseconds of each other share one transaction.

A sweep chunk ends hundreds of items a second, each with a Ledger row and a results
row. Written as they come, most commits carry one or two rows and the PostgreSQL work
per row (a transaction, a head lock, a fsync) is what the sweep pays for; held for
`linger_s`, the rows of every chunk on the worker go in one transaction per key:

    rows = GroupCommit(write_rows, linger_s=0.02)
    stored = await rows.put((tenant, sweep_id), row)   # returns once its write committed

`write(key, items)` returns one result per item. If it raises for several items, each
is written alone, so a bad one fails alone (as `EventStore` does) — unless `isolate`
says the error is not an item's (the database is down): then the whole group fails
with it at once, instead of waiting for the database once more per item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from activities.records import BatchEventSink, EventSink
from boomerang.models.events import RunEvent
from boomerang.store.errors import is_outage
from boomerang.store.recorder import settle

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[K, T, R]):
    def __init__(
        self,
        write: Callable[[K, list[T]], Awaitable[Sequence[R]]],
        *,
        linger_s: float,
        isolate: Callable[[Exception], bool] = lambda exc: True,
    ) -> None:
        if linger_s < 0:
            raise ValueError(f"linger_s must not be negative, got {linger_s}")
        self._write = write
        self._linger_s = linger_s
        self._isolate = isolate
        self._queue: list[tuple[K, T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def put(self, key: K, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((key, item, future))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            await asyncio.sleep(self._linger_s)
            batch, self._queue = self._queue, []
            groups: dict[K, list[tuple[T, asyncio.Future[R]]]] = {}
            for key, item, future in batch:
                groups.setdefault(key, []).append((item, future))
            await asyncio.gather(*(self._commit(key, group) for key, group in groups.items()))

    async def _commit(self, key: K, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write(key, [item for item, _ in group])
        except Exception as exc:
            if len(group) == 1 or not self._isolate(exc):
                for _, future in group:
                    settle(future, exc)
                return
            for one in group:
                await self._commit(key, [one])
            return
        for (_, future), result in zip(group, results, strict=True):
            settle(future, result)


class LingeringSink:
    """An `EventSink` whose events wait `linger_s` to share a `record_many` with others."""

    def __init__(self, sink: EventSink, *, linger_s: float) -> None:
        self._sink = sink
        self._commit: GroupCommit[None, RunEvent, bool] = GroupCommit(
            self._write, linger_s=linger_s, isolate=lambda exc: not is_outage(exc)
        )

    async def record(self, event: RunEvent) -> bool:
        return await self._commit.put(None, event)

    async def _write(self, _key: None, events: list[RunEvent]) -> Sequence[bool]:
        if isinstance(self._sink, BatchEventSink):
            return await self._sink.record_many(events)
        return [await self._sink.record(event) for event in events]
