"""The local backend runs the real function bodies, enforces timeouts, honours cancellation."""

from __future__ import annotations

import asyncio

import pytest

from activities.compute import ComputeError, ComputeTimeoutError
from activities.local_backend import LocalBackend
from modal_app.contracts import FunctionResult

PAYLOAD = {
    "run_id": "r1",
    "phase": "onboarding",
    "brief": "We build an app. Clinics struggle with billing.",
}


async def test_runs_a_phase_function_and_returns_its_result(backend: LocalBackend) -> None:
    raw = await backend.call("phase_0_onboarding", PAYLOAD, timeout_s=30)
    result = FunctionResult.model_validate(raw)
    brief = result.output["founders_brief"]
    assert isinstance(brief, dict)
    assert brief["problem"] == ["Clinics struggle with billing."]
    assert result.finished_at >= result.started_at


async def test_timeout_stops_the_process() -> None:
    backend = LocalBackend(max_concurrency=1)
    try:
        with pytest.raises(ComputeTimeoutError, match=r"ran past its 0\.3s timeout"):
            await backend.call(
                "phase_0_onboarding", {**PAYLOAD, "context": {"work_seconds": 30}}, timeout_s=0.3
            )
        # The killed process is not reused; the next call gets a fresh one and works.
        assert backend._idle == []
        raw = await backend.call("phase_0_onboarding", PAYLOAD, timeout_s=30)
        assert "founders_brief" in raw["output"]
    finally:
        await backend.aclose()


async def test_cancellation_kills_the_running_call() -> None:
    backend = LocalBackend(max_concurrency=1)
    try:
        call = asyncio.create_task(
            backend.call("phase_0_onboarding", {**PAYLOAD, "context": {"work_seconds": 30}}, timeout_s=60)
        )
        await asyncio.sleep(0.5)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert backend._idle == []
        # The slot was released: another call can run at once.
        await asyncio.wait_for(backend.call("phase_0_onboarding", PAYLOAD, timeout_s=30), 30)
    finally:
        await backend.aclose()


async def test_bad_input_is_a_permanent_error(backend: LocalBackend) -> None:
    with pytest.raises(ComputeError) as caught:
        await backend.call("phase_0_onboarding", {"run_id": "r1"}, timeout_s=30)
    assert caught.value.permanent and caught.value.error_type == "ValidationError"
    with pytest.raises(ComputeError, match="no compute function 'phase_9'") as unknown:
        await backend.call("phase_9", PAYLOAD, timeout_s=30)
    assert unknown.value.permanent


async def test_concurrency_is_bounded() -> None:
    backend = LocalBackend(max_concurrency=2)
    try:
        slow = {**PAYLOAD, "context": {"work_seconds": 0.3}}
        results = await asyncio.gather(
            *(backend.call("phase_0_onboarding", slow, timeout_s=30) for _ in range(6))
        )
        assert len(results) == 6
        # Never more than two processes were needed.
        assert len(backend._idle) <= 2
    finally:
        await backend.aclose()


def test_rejects_a_nonsense_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LocalBackend(max_concurrency=0)
