"""Run one pipeline phase on the compute backend."""

from __future__ import annotations

import asyncio
from contextlib import suppress

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.compute import ComputeBackend, ComputeError
from modal_app.contracts import FunctionResult, PhaseRequest


class RunPhaseInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    function: str
    timeout_s: float = Field(gt=0)
    # A few beats per heartbeat timeout, so one late beat never fails a live attempt.
    heartbeat_every_s: float = Field(default=2.0, gt=0)
    request: PhaseRequest


class PhaseActivities:
    def __init__(self, backend: ComputeBackend) -> None:
        self._backend = backend

    @activity.defn(name="run_phase")
    async def run_phase(self, inp: RunPhaseInput) -> FunctionResult:
        # Heartbeats let Temporal notice a dead worker quickly and deliver cancellation.
        beat = asyncio.create_task(_heartbeat_forever(inp.heartbeat_every_s))
        try:
            raw = await self._backend.call(
                inp.function, inp.request.model_dump(mode="json"), timeout_s=inp.timeout_s
            )
        except ComputeError as exc:
            raise ApplicationError(
                str(exc),
                {"traceback": exc.traceback},
                type=f"Compute{exc.error_type}",
                non_retryable=exc.permanent,
            ) from exc
        finally:
            beat.cancel()
            with suppress(asyncio.CancelledError):
                await beat
        return FunctionResult.model_validate(raw)


async def _heartbeat_forever(every_s: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(every_s)
