"""The Modal backend against a double of the remote service: one spawn per task, re-attach,
cancellation, error mapping, bounded bursts. The same paths over the real SDK and the wire,
and inside Temporal workers, are in tests/modal_servicer/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import modal.exception as mx
import pytest

from activities.compute import ComputeError, ComputeTimeoutError
from activities.limits import ConcurrencyLimits
from activities.modal_backend import CallCheckpoint, ModalBackend
from modal_app.contracts import FunctionResult
from modal_app.functions import UnknownFunctionError
from modal_app.registry import builtin_registry
from tests.backends.modal_double import RemoteService

FUNCTION = "phase_0_onboarding"
PAYLOAD: dict[str, Any] = {
    "run_id": "r1",
    "phase": "onboarding",
    "brief": "We build an app. Clinics struggle with billing.",
}


class WorkerDied(BaseException):
    """Stands in for the worker process dying: nothing after it runs, nothing is cancelled."""


def make_backend(service: RemoteService, **options: Any) -> ModalBackend:
    options.setdefault("poll_s", 0.05)
    return ModalBackend(function_lookup=service.function, call_lookup=service.call, **options)


@pytest.fixture
async def service() -> AsyncIterator[RemoteService]:
    s = RemoteService()
    yield s
    await s.aclose()


def assert_real_result(raw: dict[str, Any]) -> None:
    brief: Any = FunctionResult.model_validate(raw).output["founders_brief"]
    assert brief["problem"] == ["Clinics struggle with billing."]


async def test_spawns_heartbeats_the_call_id_and_returns_the_real_result(service: RemoteService) -> None:
    beats: list[dict[str, Any]] = []
    raw = await make_backend(service, heartbeat=beats.append).call(FUNCTION, PAYLOAD, timeout_s=30)
    assert_real_result(raw)
    assert service.spawns == 1
    first = CallCheckpoint.model_validate(beats[0])
    assert first.call_id == next(iter(service.calls)) and first.function == FUNCTION and not first.finished


async def test_one_spawn_across_a_crash_resumed_by_call_id(service: RemoteService) -> None:
    service.held = True
    beats: list[dict[str, Any]] = []

    def die_after_recording(details: dict[str, Any]) -> None:
        beats.append(details)
        raise WorkerDied

    with pytest.raises(WorkerDied):
        await make_backend(service, heartbeat=die_after_recording).call(FUNCTION, PAYLOAD, timeout_s=30)
    assert service.spawns == 1 and service.cancelled == []

    call_id = beats[0]["call_id"]
    resumed = asyncio.create_task(
        make_backend(service, heartbeat=beats.append).call(
            FUNCTION, PAYLOAD, timeout_s=30, resume_call_id=call_id
        )
    )
    await service.until(lambda: service.polls >= 1)  # re-attached and waiting on the call
    service.release()
    assert_real_result(await resumed)
    assert service.spawns == 1
    assert {b["call_id"] for b in beats} == {call_id}


async def test_one_spawn_across_a_crash_resumed_from_heartbeat_details(service: RemoteService) -> None:
    beats: list[dict[str, Any]] = []

    def die_after_recording(details: dict[str, Any]) -> None:
        beats.append(details)
        raise WorkerDied

    with pytest.raises(WorkerDied):
        await make_backend(service, heartbeat=die_after_recording).call(FUNCTION, PAYLOAD, timeout_s=30)
    # The retried attempt reads what the dead one heartbeated, as activity.info() gives it.
    retry = make_backend(service, heartbeat=beats.append, previous_details=lambda: list(beats))
    assert_real_result(await retry.call(FUNCTION, PAYLOAD, timeout_s=30))
    assert service.spawns == 1


async def test_details_for_another_function_or_a_finished_call_spawn_anew(service: RemoteService) -> None:
    stale_details: list[list[dict[str, Any]]] = [
        [{}],  # a plain liveness heartbeat
        [{"function": "phase_1_vpc_discovery", "call_id": "fc-x", "spawned_at": 0.0}],
        [{"function": FUNCTION, "call_id": "fc-x", "spawned_at": 0.0, "finished": True}],
    ]
    for stale in stale_details:
        await make_backend(service, previous_details=lambda s=stale: s).call(FUNCTION, PAYLOAD, timeout_s=30)
    assert service.spawns == 3


async def test_cancellation_cancels_the_remote_call(service: RemoteService) -> None:
    service.held = True
    beats: list[dict[str, Any]] = []
    task = asyncio.create_task(
        make_backend(service, heartbeat=beats.append).call(FUNCTION, PAYLOAD, timeout_s=30)
    )
    await service.until(lambda: service.polls >= 1)  # spawned, heartbeated, waiting on it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert service.cancelled == list(service.calls)
    # The last heartbeat marks the call finished, so no retry re-attaches to it.
    assert CallCheckpoint.model_validate(beats[-1]).finished


async def test_a_call_cancelled_while_spawning_is_stopped_once_it_exists(service: RemoteService) -> None:
    # Cancelled before the spawn's reply: no attempt can ever re-attach, so it must not run on.
    service.held = True
    service.spawn_reply.clear()
    task = asyncio.create_task(
        make_backend(service, cancel_remote_on_cancel=lambda: False).call(FUNCTION, PAYLOAD, timeout_s=30)
    )
    await service.until(lambda: service.spawns == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    service.spawn_reply.set()
    await service.until(lambda: service.cancelled == list(service.calls))


async def test_a_cancel_that_is_not_final_leaves_the_call_for_the_retry(service: RemoteService) -> None:
    # A worker shutting down: Temporal will retry the activity, and the retry re-attaches.
    service.held = True
    backend = make_backend(service, cancel_remote_on_cancel=lambda: False)
    task = asyncio.create_task(backend.call(FUNCTION, PAYLOAD, timeout_s=30))
    await service.until(lambda: service.polls >= 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert service.cancelled == []


async def test_a_call_past_its_deadline_is_cancelled_and_times_out(service: RemoteService) -> None:
    service.held = True
    backend = make_backend(service, grace_s=0)
    with pytest.raises(ComputeTimeoutError, match=r"ran past its 0\.2s timeout") as caught:
        await backend.call(FUNCTION, PAYLOAD, timeout_s=0.2)
    assert not caught.value.permanent
    assert service.cancelled == list(service.calls)


# -- error mapping ---------------------------------------------------------------------------------

SPAWN_ERRORS = [
    pytest.param(
        mx.NotFoundError("Lookup failed for Function 'phase_0_onboarding'"),
        "NotDeployed",
        True,
        r"not deployed on Modal .*run `modal deploy modal_app/app\.py`",
        id="not-deployed",
    ),
    pytest.param(
        mx.AuthError("Token missing"),
        "ModalAuth",
        True,
        "check MODAL_TOKEN_ID and MODAL_TOKEN_SECRET",
        id="auth",
    ),
    pytest.param(
        mx.PermissionDeniedError("no access"), "ModalAuth", True, "rejected the credentials", id="permission"
    ),
    pytest.param(
        mx.ResourceExhaustedError("queue full"), "ModalOverloaded", False, "out of capacity", id="overloaded"
    ),
    pytest.param(
        mx.ConnectionError("connection reset"),
        "ModalUnavailable",
        False,
        "could not reach Modal",
        id="connection",
    ),
    pytest.param(mx.InternalError("oops"), "ModalUnavailable", False, "could not reach Modal", id="internal"),
    pytest.param(
        mx.RequestSizeError("too big"),
        "ModalRejected",
        True,
        "Modal cannot run .*RequestSizeError",
        id="size",
    ),
]


@pytest.mark.parametrize(("exc", "error_type", "permanent", "message"), SPAWN_ERRORS)
async def test_spawn_errors_map(
    service: RemoteService, exc: BaseException, error_type: str, permanent: bool, message: str
) -> None:
    service.spawn_error = exc
    with pytest.raises(ComputeError, match=message) as caught:
        await make_backend(service).call(FUNCTION, PAYLOAD, timeout_s=30)
    assert (caught.value.error_type, caught.value.permanent) == (error_type, permanent)
    assert "boomerang.phase_0_onboarding" in str(caught.value)


OUTCOME_ERRORS = [
    pytest.param(
        mx.FunctionTimeoutError("Function timed out after 3600s"),
        "FunctionTimeout",
        True,
        "ran past its timeout on Modal",
        id="function-timeout",
    ),
    pytest.param(
        mx.OutputExpiredError(),
        "OutputExpired",
        True,
        "expired on Modal before it was collected",
        id="expired",
    ),
    pytest.param(
        mx.RemoteError(""), "ModalRemoteFailure", False, r"failed on Modal: RemoteError$", id="terminated"
    ),
    pytest.param(
        mx.InternalFailure("worker lost"), "ModalRemoteFailure", False, "worker lost", id="internal-failure"
    ),
    pytest.param(
        mx.ExecutionError("Could not deserialize remote exception"),
        "ModalRejected",
        True,
        "Could not deserialize",
        id="undeserializable",
    ),
    pytest.param(
        mx.InputCancellation("Input was cancelled by user"),
        "CallCancelled",
        True,
        "cancelled on Modal, outside this task",
        id="cancelled-elsewhere",
    ),
    # What the SDK re-raises when the function body itself raised.
    pytest.param(
        ValueError("context.tam must be a number"), "ValueError", True, "tam must be", id="user-value"
    ),
    pytest.param(
        UnknownFunctionError("no compute function"),
        "UnknownFunctionError",
        True,
        "no compute",
        id="user-unknown",
    ),
    pytest.param(
        RuntimeError("CUDA out of memory"), "RuntimeError", False, "CUDA out of memory", id="user-other"
    ),
    # Transport errors while polling: the call itself may be fine.
    pytest.param(
        mx.NotFoundError("no such call"), "CallNotFound", False, "no longer exists on Modal", id="gone"
    ),
]


@pytest.mark.parametrize(("exc", "error_type", "permanent", "message"), OUTCOME_ERRORS)
async def test_call_outcome_errors_map_and_mark_the_call_finished(
    service: RemoteService, exc: BaseException, error_type: str, permanent: bool, message: str
) -> None:
    if error_type == "CallNotFound":
        service.poll_errors.append(exc)
    else:
        service.outcome_error = exc
    beats: list[dict[str, Any]] = []
    with pytest.raises(ComputeError, match=message) as caught:
        await make_backend(service, heartbeat=beats.append).call(FUNCTION, PAYLOAD, timeout_s=30)
    assert (caught.value.error_type, caught.value.permanent) == (error_type, permanent)
    assert caught.value.traceback
    # The outcome is known: the next attempt spawns a new call instead of re-attaching.
    assert CallCheckpoint.model_validate(beats[-1]).finished
    service.outcome_error = None
    await make_backend(service, previous_details=lambda: beats).call(FUNCTION, PAYLOAD, timeout_s=30)
    assert service.spawns == 2


@pytest.mark.parametrize(
    "exc",
    [
        mx.ConnectionError("connection reset"),
        mx.ServiceError("unavailable"),
        mx.ResourceExhaustedError("slow down"),
    ],
    ids=["connection", "service", "rate-limited"],
)
async def test_transport_errors_while_polling_keep_the_call_for_the_retry(
    service: RemoteService, exc: BaseException
) -> None:
    service.poll_errors.append(exc)
    beats: list[dict[str, Any]] = []
    with pytest.raises(ComputeError) as caught:
        await make_backend(service, heartbeat=beats.append).call(FUNCTION, PAYLOAD, timeout_s=30)
    assert not caught.value.permanent
    assert not CallCheckpoint.model_validate(beats[-1]).finished
    assert_real_result(
        await make_backend(service, previous_details=lambda: beats).call(FUNCTION, PAYLOAD, timeout_s=30)
    )
    assert service.spawns == 1


async def test_failures_returned_as_data_keep_their_classification(service: RemoteService) -> None:
    with pytest.raises(ComputeError, match="ValidationError") as bad_input:
        await make_backend(service).call(FUNCTION, {"run_id": "r1"}, timeout_s=30)
    assert bad_input.value.permanent and bad_input.value.error_type == "ValidationError"
    assert "Traceback" in bad_input.value.traceback


async def test_a_bare_result_from_an_older_deployment_is_accepted() -> None:
    service = RemoteService(body=builtin_registry().invoke)
    try:
        assert_real_result(await make_backend(service).call(FUNCTION, PAYLOAD, timeout_s=30))
    finally:
        await service.aclose()


# -- bounded bursts --------------------------------------------------------------------------------


async def burst(backend: ModalBackend, n: int = 64) -> list[dict[str, Any] | BaseException]:
    return await asyncio.gather(
        *(backend.call(FUNCTION, PAYLOAD, timeout_s=30) for _ in range(n)), return_exceptions=True
    )


@pytest.mark.parametrize(
    "limits",
    [ConcurrencyLimits(default=8), ConcurrencyLimits(per_gpu={"A10G": 8})],
    ids=["per-function", "per-gpu"],
)
async def test_a_burst_of_64_under_a_limit_of_8_all_succeeds(limits: ConcurrencyLimits) -> None:
    service = RemoteService(capacity=8, duration_s=0.02)
    try:
        results = await burst(make_backend(service, limits=limits, gpu_of=lambda _: "a10g"))
    finally:
        await service.aclose()
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    assert service.spawns == 64 and service.rejected == 0
    assert service.peak == 8


async def test_the_same_burst_without_limits_overloads_the_service() -> None:
    service = RemoteService(capacity=8, duration_s=0.02)
    try:
        results = await burst(make_backend(service))
    finally:
        await service.aclose()
    failures = [r for r in results if isinstance(r, ComputeError)]
    assert failures and service.rejected == len(failures)
    assert all(f.error_type == "ModalOverloaded" and not f.permanent for f in failures)


async def test_a_poll_never_outlasts_the_heartbeat_the_activity_needs() -> None:
    """The workflow decides the cadence (a third of the heartbeat timeout); a backend
    configured to poll less often still heartbeats at least that often."""
    service = RemoteService(duration_s=0.6)
    beats: list[dict[str, Any]] = []
    try:
        backend = make_backend(service, heartbeat=beats.append, poll_s=30)
        assert_real_result(await backend.call(FUNCTION, PAYLOAD, timeout_s=30, heartbeat_every_s=0.1))
    finally:
        await service.aclose()
    assert len(beats) >= 4, beats  # the first checkpoint, then one per poll of at most 0.1 s
