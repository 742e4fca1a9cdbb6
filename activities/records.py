"""Record run events in the Charter and the Ledger (exactly once, by event key)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from boomerang.models.events import RecordEventsInput, RunEvent
from boomerang.store.errors import InvalidEventError


class EventSink(Protocol):
    """Where events go: `boomerang.store.recorder.EventStore` in every real deployment."""

    async def record(self, event: RunEvent) -> bool: ...


@runtime_checkable
class BatchEventSink(EventSink, Protocol):
    """A sink that writes several events in one transaction (`EventStore` does)."""

    async def record_many(self, events: Sequence[RunEvent]) -> list[bool]: ...


async def record_all(store: EventSink, events: Sequence[RunEvent]) -> int:
    """Write each event once, in order; how many were new (a retry writes none).

    A malformed event is a non-retryable `InvalidEvent` error: it will be malformed on
    every retry."""
    try:
        if isinstance(store, BatchEventSink):
            # One transaction for the batch: one commit, one head lock per stream.
            return sum(await store.record_many(events))
        written = 0
        for event in events:
            written += await store.record(event)
        return written
    except InvalidEventError as exc:
        raise ApplicationError(str(exc), type="InvalidEvent", non_retryable=True) from exc


class RecordActivities:
    def __init__(self, store: EventSink) -> None:
        self._store = store

    @activity.defn(name="record_events")
    async def record_events(self, inp: RecordEventsInput) -> int:
        """Write each event once; returns how many were new (a retry writes none)."""
        return await record_all(self._store, inp.events)
