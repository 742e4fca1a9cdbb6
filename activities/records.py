"""Record run events in the Charter and the Ledger (exactly once, by event key)."""

from __future__ import annotations

from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from boomerang.models.events import RecordEventsInput, RunEvent
from boomerang.store.errors import InvalidEventError


class EventSink(Protocol):
    """Where events go: `boomerang.store.recorder.EventStore` in every real deployment."""

    async def record(self, event: RunEvent) -> bool: ...


class RecordActivities:
    def __init__(self, store: EventSink) -> None:
        self._store = store

    @activity.defn(name="record_events")
    async def record_events(self, inp: RecordEventsInput) -> int:
        """Write each event once; returns how many were new (a retry writes none)."""
        written = 0
        for event in inp.events:
            try:
                written += await self._store.record(event)
            except InvalidEventError as exc:
                # A malformed event will be malformed on every retry: fail it loudly.
                raise ApplicationError(str(exc), type="InvalidEvent", non_retryable=True) from exc
        return written
