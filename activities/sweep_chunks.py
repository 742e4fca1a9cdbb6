"""One sweep chunk: consecutive items, `lanes` at a time, each costed, each row written once.

A `run_sweep_chunk` activity does for k items what k `run_sweep_item` activities did,
for one Temporal round trip and one workflow task instead of k (README: Sweeps):

- it reads the rows its items already have (one query) and runs only the others, so a
  chunk retried after its worker died repeats no item that had succeeded;
- every try of an item is a compute attempt with a Ledger row of its own, keyed by the
  chunk's activity attempt, the item and the try (`AttemptSlot`); the rows of
  concurrent items share a commit (`EventStore`'s group commit);
- an item that fails is retried here, with backoff, until its own `max_attempts`; its
  last failure is its row, so one item never fails the chunk;
- the heartbeat carries each item's tries and the start of the try in flight, so the
  next attempt, if this worker dies, settles those tries as `lost` (costed until the
  beat) and counts the failed ones against the item;
- rows are written as items end; rows (and Ledger rows) that end within
  `COMMIT_LINGER_S` of each other, in any chunk on the worker, share a transaction;
- a cancelled chunk kills its calls (the backend); when the sweep was cancelled (not
  when the worker shuts down) it writes `cancelled` rows for the items it had started;
  items it never started keep no row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempts import AttemptSlot, LostAttempt, attempt_key
from activities.compute import ComputeBackend, cancel_is_final
from activities.dispatch import Dispatcher
from activities.group_commit import GroupCommit
from activities.sweep_rows import dispatch_input, item_row, succeeded_row
from boomerang.artifacts import ArtifactStore
from boomerang.models.sweeps import SweepChunkInput, SweepItemInput, SweepResult
from modal_app.registry import Registry
from workflows.sweep_chunking import BACKOFF_MAX_S, BACKOFF_S


class ItemTries(BaseModel):
    """One item's tries as the heartbeat carries them to the chunk's next attempt."""

    model_config = ConfigDict(extra="ignore")

    index: int
    started: int = 0  # over every attempt of the chunk: the next try's number is started + 1
    failed: int = 0
    running_since: float | None = None  # wall clock: it travels to another worker


class ChunkBeat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attempt: int
    beat_at: float
    items: list[ItemTries]

    @classmethod
    def last(cls, details: Sequence[Any]) -> ChunkBeat | None:
        try:
            return cls.model_validate(details[-1]) if details else None
        except ValidationError:
            return None


# How long a row waits for others to share its commit: at hundreds of items a second
# this makes one transaction of ten rows or more. A worker killed meanwhile loses these
# rows, and their items run again in the chunk's retry, as an item whose worker died
# before its row was written always did.
COMMIT_LINGER_S = 0.02

# Result rows group-committed per (tenant, sweep id).
RowCommit = GroupCommit[tuple[str, str], SweepResult, SweepResult]

# The lane of the item try running in this task (each item runs in a task of its own).
_lane: ContextVar[_Lane | None] = ContextVar("sweep_chunk_lane", default=None)


class _Lane:
    """A lane held by one item try and given back once: as its call returns (the Ledger row
    is then written off the lane, so the next item starts at once), or as the try ends."""

    def __init__(self, lanes: asyncio.Semaphore) -> None:
        self._lanes = lanes
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lanes.release()


class _LanedBackend:
    """The worker's backend; gives the calling item's lane back as soon as its call returns."""

    def __init__(self, inner: ComputeBackend) -> None:
        self._inner = inner

    @property
    def registry(self) -> Registry:
        return self._inner.registry

    async def call(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        timeout_s: float,
        heartbeat_every_s: float | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        try:
            return await self._inner.call(
                name, payload, timeout_s=timeout_s, heartbeat_every_s=heartbeat_every_s, tenant=tenant
            )
        finally:
            lane = _lane.get()
            if lane is not None:
                lane.release()

    async def aclose(self) -> None:
        """The worker closes the backend it wraps."""


class ChunkRun:
    """One attempt of one chunk (see the module docstring)."""

    def __init__(
        self, inp: SweepChunkInput, *, dispatcher: Dispatcher, rows: RowCommit, artifacts: ArtifactStore
    ) -> None:
        info = activity.info()
        self._inp = inp
        self._dispatcher = dispatcher.rewired(backend=_LanedBackend(dispatcher.backend))
        self._artifacts = artifacts
        self._rows = rows
        self._row_key = (inp.tenant, inp.sweep_id)
        self._attempt = info.attempt
        self._key = attempt_key(info.workflow_id, info.workflow_run_id, info.activity_id, info.attempt)
        self._lanes = asyncio.Semaphore(inp.lanes)
        self._tries = {item.index: ItemTries(index=item.index) for item in inp.items}
        self._stopped = False
        self.not_started: list[int] = []

    async def resume(self, previous: ChunkBeat | None, stored: dict[int, SweepResult]) -> None:
        """Take over the tries of the attempt that beat last; settle those it left running."""
        self._stopped = self._inp.stop_on_failure and any(r.status == "failed" for r in stored.values())
        if previous is None:
            return
        info = activity.info()
        key = attempt_key(info.workflow_id, info.workflow_run_id, info.activity_id, previous.attempt)
        items = {item.index: item for item in self._inp.items}
        for tries in previous.items:
            if tries.index not in items:
                continue
            if tries.running_since is not None:
                seconds = max(0.0, previous.beat_at - tries.running_since)
                lost = LostAttempt(tries.started, seconds, "worker lost; costed until its heartbeat stopped")
                slot = AttemptSlot(f"{key}/item-{tries.index}/try-{tries.started}", tries.started)
                await self._dispatcher.settle_lost(dispatch_input(items[tries.index]), lost, slot)
            self._tries[tries.index] = tries.model_copy(update={"running_since": None})

    async def run(self, items: list[SweepItemInput]) -> list[SweepResult]:
        beat = asyncio.create_task(self._beat())
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._item(item)) for item in items]
        except asyncio.CancelledError:
            # The calls were killed (or cancelled remotely) under the tasks. A cancel of the sweep
            # says so in their rows; a worker shutting down leaves them to the chunk's retry.
            if cancel_is_final():
                await asyncio.shield(self._cancelled(items))
            raise
        finally:
            beat.cancel()
        return [row for row in (t.result() for t in tasks) if row is not None]

    async def _item(self, item: SweepItemInput) -> SweepResult | None:
        tries = self._tries[item.index]
        while True:
            await self._lanes.acquire()
            lane = _Lane(self._lanes)
            _lane.set(lane)
            try:
                if self._stopped:
                    self.not_started.append(item.index)
                    return None
                tries.started += 1
                n, tries.running_since = tries.started, time.time()
                try:
                    outcome = await self._dispatcher.run(
                        dispatch_input(item), AttemptSlot(f"{self._key}/item-{item.index}/try-{n}", n)
                    )
                except Exception as exc:
                    error, retryable = _failure(exc)
                    tries.failed += 1
                    if not retryable or tries.failed >= item.max_attempts:
                        self._stopped = self._stopped or self._inp.stop_on_failure
                        return await self._rows.put(
                            self._row_key, item_row(item, "failed", error=error, attempts=n)
                        )
                else:
                    row = await succeeded_row(item, outcome, n, self._artifacts)
                    return await self._rows.put(self._row_key, row)
                finally:
                    tries.running_since = None
            finally:
                lane.release()
            # Off the lane: a backing-off item leaves it to the next.
            await asyncio.sleep(min(BACKOFF_S * 2 ** (tries.failed - 1), BACKOFF_MAX_S))

    async def _cancelled(self, items: list[SweepItemInput]) -> None:
        started = [i for i in items if self._tries[i.index].started and i.index not in self.not_started]
        rows = [item_row(i, "cancelled", attempts=0) for i in started]
        await asyncio.gather(*(self._rows.put(self._row_key, row) for row in rows), return_exceptions=True)

    async def _beat(self) -> None:
        while True:
            items = [t for t in self._tries.values() if t.started]
            beat = ChunkBeat(attempt=self._attempt, beat_at=time.time(), items=items)
            activity.heartbeat(beat.model_dump())
            await asyncio.sleep(self._inp.heartbeat_every_s)


def _failure(exc: Exception) -> tuple[str, bool]:
    """The row's error and whether another try may help."""
    if isinstance(exc, ApplicationError):
        return f"{exc.type}: {exc}", not exc.non_retryable
    return f"{type(exc).__name__}: {exc}", True
