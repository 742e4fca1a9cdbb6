"""A workflow's events, queued in order and written to the Charter and Ledger beside it.

The run never waits on its own bookkeeping: `emit` only queues, and one background
task writes the queue batch by batch, sequentially (a local activity, one
transaction per batch), so the Ledger's order is the order things happened. What is
queued when the run starts an activity can go with it instead (`hand_off`).
`flush` waits until everything queued is written (before a run ends). Keys are
`<workflow id>/<seq>/<kind>`: deterministic on replay, and a retried write finds its
key and writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.records import RecordActivities
    from boomerang.models.events import EventKind, RecordEventsInput, RunEvent

# Recording must not give up: an event lost is a Charter/Ledger gap. Postgres being
# down stalls the writes (and `flush`), never the decisions.
# Recorded as a local activity (in the workflow task that emitted the events): no
# activity task and no second workflow task per batch. Runs started before this
# recorded through a regular activity and replay that way.
RECORD_LOCALLY = "record-events-local"
# Runs since: the events queued when a phase or task is dispatched go with the dispatch
# activity, which writes them first (`EventLog.carried_by`), instead of a local activity
# holding up the workflow task that starts it. Earlier runs replay with the local activity.
EVENTS_WITH_DISPATCH = "events-with-dispatch"
T = TypeVar("T")
_RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


class EventLog:
    def __init__(
        self, *, run_id: str, tenant: str, project_id: str | None = None, key_prefix: str | None = None
    ) -> None:
        self.run_id = run_id
        self._tenant = tenant
        self._project_id = project_id
        # A workflow that continues as new passes one per run (its seq starts again at 1).
        self._key_prefix = key_prefix or workflow.info().workflow_id
        self._outbox: list[RunEvent] = []
        self._writing = False
        self._seq = 0
        # Events an activity of the run writes first (`hand_off`), until it has ended.
        self._handed: tuple[RunEvent, ...] = ()
        self._handed_written = False

    def emit(self, kind: EventKind, **fields: Any) -> RunEvent:
        self._seq += 1
        fields.setdefault("project_id", self._project_id)
        event = RunEvent(
            event_key=f"{self._key_prefix}/{self._seq:05d}/{kind.value}",
            run_id=self.run_id,
            tenant=self._tenant,
            kind=kind,
            occurred_at=workflow.now(),
            **fields,
        )
        self._outbox.append(event)
        return event

    def start(self) -> asyncio.Task[None]:
        """Start the writer; cancel it once the run has flushed."""
        return asyncio.create_task(self._write_forever())

    def hand_off(self) -> tuple[RunEvent, ...]:
        """What is queued, for the activity the run starts now to write before its work.

        It saves this workflow task a local activity and lets the activity start without
        waiting for one (`DispatchInput.events`). Only when the writer is idle: a batch
        it is writing must land first. Until `handed_back`, anything the writer writes
        goes after these events in the same transaction (the store keeps each key once),
        so the Ledger's order holds whichever writes them first."""
        if self._writing or self._handed:
            return ()
        self._handed, self._outbox = tuple(self._outbox), []
        self._handed_written = False
        return self._handed

    async def carried_by(self, start: Callable[[tuple[RunEvent, ...]], Awaitable[T]]) -> T:
        """`start(events)` an activity that writes what is queued first; see `hand_off`.
        Runs started before `EVENTS_WITH_DISPATCH` start it with none, as they did."""
        if not workflow.patched(EVENTS_WITH_DISPATCH):
            return await start(())
        handed = self.hand_off()
        try:
            result = await start(handed)
        except BaseException:
            if handed:
                self.handed_back(written=False)
            raise
        if handed:
            self.handed_back(written=True)
        return result

    def handed_back(self, *, written: bool) -> None:
        """The activity has ended; `written` when it succeeded (so it wrote them)."""
        handed, self._handed = self._handed, ()
        if not written and not self._handed_written:
            self._outbox[:0] = handed

    async def _write_forever(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox))
            batch, self._outbox = tuple(self._outbox), []
            if self._handed and not self._handed_written:
                batch, self._handed_written = (*self._handed, *batch), True
            self._writing = True
            try:
                if workflow.patched(RECORD_LOCALLY):
                    await workflow.execute_local_activity_method(
                        RecordActivities.record_events,
                        RecordEventsInput(events=batch),
                        start_to_close_timeout=timedelta(seconds=30),
                        retry_policy=_RECORD_RETRY,
                        # While retrying in the worker it holds the workflow task open, and a
                        # decision would wait: after this, retries back off on durable timers.
                        local_retry_threshold=timedelta(seconds=2),
                    )
                else:
                    await workflow.execute_activity_method(
                        RecordActivities.record_events,
                        RecordEventsInput(events=batch),
                        start_to_close_timeout=timedelta(seconds=30),
                        retry_policy=_RECORD_RETRY,
                    )
            finally:
                self._writing = False

    async def flush(self) -> None:
        """Wait until every queued event is written."""
        await workflow.wait_condition(lambda: not self._outbox and not self._writing)
