"""Dispatch one compute call from an activity, and put every attempt's cost in the Ledger.

Each attempt — success, failure, timeout or cancellation — becomes one Ledger-only
`compute_attempt` event keyed by the activity attempt, so money spent twice shows
twice and a retried write of the same attempt shows once. The workflow's own
events (phase/task completed) carry no cost columns, so a run's Ledger total is the
sum of its attempts. An attempt killed with its worker is settled by the next one
under its own key (`activities.attempts`).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempts import AttemptBeat, AttemptSlot, LostAttempt, attempt_key, lost_attempts
from activities.compute import ComputeBackend, ComputeError, cancel_is_final
from activities.records import EventSink, record_all
from boomerang.models.events import CostBreakdown, EventKind, RunEvent
from boomerang.models.tasks import DispatchInput, DispatchOutcome
from boomerang.pricing import PriceTable, cost_of, estimate_function
from modal_app.contracts import FunctionResult
from modal_app.registry import Registry
from modal_app.telemetry import with_trace_context


class Dispatcher:
    def __init__(
        self, backend: ComputeBackend, events: EventSink, prices: PriceTable, registry: Registry
    ) -> None:
        self._backend = backend
        self._events = events
        self._prices = prices
        self._registry = registry

    def rewired(
        self, *, backend: ComputeBackend | None = None, events: EventSink | None = None
    ) -> Dispatcher:
        """The same prices and registry over another backend or sink (a sweep chunk wraps both)."""
        return Dispatcher(backend or self._backend, events or self._events, self._prices, self._registry)

    @property
    def backend(self) -> ComputeBackend:
        return self._backend

    @property
    def events(self) -> EventSink:
        return self._events

    @property
    def heartbeats_itself(self) -> bool:
        """Whether the backend owns the activity's heartbeat (Modal: the call to re-attach to)."""
        return _heartbeats_itself(self._backend)

    async def run(self, inp: DispatchInput, slot: AttemptSlot | None = None) -> DispatchOutcome:
        """One attempt of the running activity; with `slot`, one of several attempts it
        runs (a sweep chunk's items): keyed by the slot, and the caller heartbeats."""
        info = activity.info()
        # The run's steps up to this dispatch (e.g. phase_started) are written beside the
        # call, and before any attempt row of it: the Ledger's order is the run's, and a
        # slow or restarting database does not hold the call back. A retried attempt finds
        # them written and writes nothing.
        steps = asyncio.ensure_future(record_all(self._events, inp.events)) if inp.events else None
        started = time.monotonic()
        dispatched_at = datetime.now(UTC)
        beat = None
        if slot is None:
            lost = lost_attempts(info.heartbeat_details, info.attempt)
            if lost and steps is not None:
                await steps
            # Before this attempt beats (and so replaces what the server kept of the last one).
            await self._settle_lost(inp, lost)
            if not _heartbeats_itself(self._backend):
                at = dispatched_at.timestamp()
                beat = asyncio.create_task(_beat(inp.heartbeat_every_s, info.attempt, at))

        async def record(inp: DispatchInput, cost: CostBreakdown, **fields: Any) -> None:
            if steps is not None:
                await steps
            await self._record(inp, cost, slot=slot, **fields)

        try:
            # One cadence, decided by the workflow from the activity's heartbeat timeout:
            # this dispatcher beats at it, or a backend that beats itself polls at it.
            raw = await self._backend.call(
                inp.function,
                # The compute function's spans join this activity's trace (when tracing is on).
                with_trace_context(dict(inp.payload)),
                timeout_s=inp.timeout_s,
                heartbeat_every_s=inp.heartbeat_every_s,
                tenant=inp.attribution.tenant,
            )
        except ComputeError as exc:
            await record(
                inp,
                self._elapsed_cost(inp.function, started),
                status="failed",
                error=f"{exc.error_type}: {exc}",
                trace=exc.traceback,
            )
            raise ApplicationError(
                str(exc),
                {"traceback": exc.traceback},
                type=f"Compute{exc.error_type}",
                non_retryable=exc.permanent,
            ) from exc
        except asyncio.CancelledError:
            # A stopped call was paid for up to now. A call left running for the next
            # attempt to re-attach to is not over: that attempt's result bills it whole.
            if not _heartbeats_itself(self._backend) or cancel_is_final():
                await asyncio.shield(
                    record(inp, self._elapsed_cost(inp.function, started), status="cancelled")
                )
            raise
        except Exception as exc:
            await record(
                inp,
                self._elapsed_cost(inp.function, started),
                status="failed",
                error=f"{type(exc).__name__}: {exc}",
                trace=traceback.format_exc(),
            )
            raise
        finally:
            if beat is not None:
                beat.cancel()
                with suppress(asyncio.CancelledError):
                    await beat
        result = FunctionResult.model_validate(raw)
        cost = cost_of(result, self._prices)
        # Queue wait (and start-up) as the caller saw it: dispatch to the function's own start.
        timing: dict[str, Any] = {
            "queued_s": round((result.started_at - dispatched_at).total_seconds(), 3),
            "cold_start": result.cold_start,
        }
        await record(
            inp, cost, status="ok", runtime=result.runtime, seconds=result.execution_time_s, extra=timing
        )
        return DispatchOutcome(result=result, cost=cost, attempt=slot.attempt if slot else info.attempt)

    def _elapsed_cost(self, function: str, started: float) -> CostBreakdown:
        return self._cost_of_seconds(function, time.monotonic() - started)

    def _cost_of_seconds(self, function: str, seconds: float) -> CostBreakdown:
        try:
            fn = self._registry.lookup(function)
        except LookupError:
            return CostBreakdown(price_table_version=self._prices.version)
        return estimate_function(self._prices, fn, seconds=seconds)

    async def settle_lost(self, inp: DispatchInput, dead: LostAttempt, slot: AttemptSlot) -> None:
        """A `lost` row for `slot`, an attempt that died with its worker (a no-op if it wrote one)."""
        await self._record(
            inp,
            self._cost_of_seconds(inp.function, dead.seconds),
            status="lost",
            seconds=dead.seconds,
            extra={"reason": dead.reason},
            slot=slot,
        )

    async def _settle_lost(self, inp: DispatchInput, lost: list[LostAttempt]) -> None:
        """A row for each earlier attempt that died unrecorded (a no-op for those that did not)."""
        for dead in lost:
            await self._record(
                inp,
                self._cost_of_seconds(inp.function, dead.seconds),
                status="lost",
                seconds=dead.seconds,
                attempt=dead.attempt,
                extra={"settled_by_attempt": activity.info().attempt, "reason": dead.reason}
                | ({"call_id": dead.call_id} if dead.call_id else {}),
            )

    async def _record(
        self,
        inp: DispatchInput,
        cost: CostBreakdown,
        *,
        status: str,
        error: str | None = None,
        trace: str = "",
        runtime: str | None = None,
        seconds: float | None = None,
        extra: dict[str, Any] | None = None,
        attempt: int | None = None,
        slot: AttemptSlot | None = None,
    ) -> None:
        info = activity.info()
        attempt = slot.attempt if slot else attempt or info.attempt
        who = inp.attribution
        details: dict[str, Any] = {
            "function": inp.function,
            "activity_id": info.activity_id,
            "runtime": runtime,
        }
        if error:
            details |= {"error": error, "traceback": trace}
        details |= extra or {}
        await self._events.record(
            RunEvent(
                # One key per activity attempt: a retried write of this attempt (or the next
                # attempt settling it) is a no-op, a new attempt (new money) is a new row.
                event_key=slot.key
                if slot
                else attempt_key(info.workflow_id, info.workflow_run_id, info.activity_id, attempt),
                run_id=who.run_id,
                tenant=who.tenant,
                project_id=who.project_id,
                kind=EventKind.COMPUTE_ATTEMPT,
                occurred_at=datetime.now(UTC),
                status=status,
                phase=who.phase,
                boomer_ang_id=who.boomer_ang_id,
                task_type=who.task_type,
                execution_time_s=seconds,
                message=f"{inp.function} attempt {attempt}: {status}",
                attempt=attempt,
                cost=cost,
                details=details,
            )
        )


def _heartbeats_itself(backend: ComputeBackend) -> bool:
    """Backends that checkpoint in heartbeats (Modal's call id) must own them alone."""
    return bool(getattr(backend, "heartbeats_itself", False))


async def _beat(every_s: float, attempt: int, started_at: float) -> None:
    while True:
        # What the next attempt costs this one by, should this worker die.
        activity.heartbeat(
            AttemptBeat(attempt=attempt, started_at=started_at, beat_at=time.time()).model_dump()
        )
        await asyncio.sleep(every_s)


class DispatchActivities:
    """The one activity that sends work to compute: pipeline phases and specialist tasks."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    @activity.defn(name="dispatch")
    async def dispatch(self, inp: DispatchInput) -> DispatchOutcome:
        return await self._dispatcher.run(inp)
