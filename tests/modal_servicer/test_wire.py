"""`ModalBackend` through the real Modal SDK client, over gRPC, to the local Modal.

Nothing of the SDK is replaced: `modal.Function.from_name`, `spawn`, `FunctionCall.from_id`,
`get(timeout=)` and `cancel` run as in production, serialise as in production and
raise what the SDK raises for what the service answered. Each of Modal's ways of
failing that the backend must survive is provoked on the service side.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest

from activities.compute import ComputeError, ComputeTimeoutError
from activities.modal_backend import CallCheckpoint, ModalBackend
from modal_app.contracts import FunctionResult
from tests.compute import task
from tests.modal_servicer.servicer import LocalModal, ModalServicer

FUNCTION = "phase_0_onboarding"
PAYLOAD: dict[str, Any] = {
    "run_id": "r1",
    "phase": "onboarding",
    "brief": "We build an app. Clinics struggle with billing.",
}


def backend(**options: Any) -> ModalBackend:
    options.setdefault("poll_s", 0.2)
    return ModalBackend(**options)


def assert_onboarding_result(raw: dict[str, Any]) -> FunctionResult:
    result = FunctionResult.model_validate(raw)
    brief: Any = result.output["founders_brief"]
    assert brief["problem"] == ["Clinics struggle with billing."]
    assert (result.function, result.cpu, result.memory_mib) == (FUNCTION, 2.0, 4096)
    return result


async def test_a_phase_is_spawned_polled_and_decoded_over_the_wire(modal_service: ModalServicer) -> None:
    beats: list[dict[str, Any]] = []
    raw = await backend(heartbeat=beats.append).call(FUNCTION, PAYLOAD, timeout_s=60)
    assert_onboarding_result(raw)
    (call_id,) = modal_service.calls
    assert CallCheckpoint.model_validate(beats[0]).call_id == call_id
    assert modal_service.rpcs == ["FunctionGet", "FunctionMap", "FunctionGetOutputs"]
    assert modal_service.calls[call_id].attempts == 1


async def test_a_specialist_task_runs_its_gpu_function(modal_service: ModalServicer) -> None:
    request = task("data_analysis", "Crunch_Ang", {"columns": {"x": [1, 2, 3, 4], "y": [3, 5, 7, 9]}})
    raw = await backend().call("task_crunch_ang", request, timeout_s=60)
    result = FunctionResult.model_validate(raw)
    assert (result.function, result.gpu_type) == ("task_crunch_ang", "A10G")
    assert result.output["columns"]["x"]["mean"] == 2.5  # type: ignore[index, call-overload]
    assert [c.function for c in modal_service.calls.values()] == ["task_crunch_ang"]


async def test_a_bad_payload_comes_back_as_data_not_a_retry(modal_service: ModalServicer) -> None:
    with pytest.raises(ComputeError, match="ValidationError") as caught:
        await backend().call(FUNCTION, {"run_id": "r1"}, timeout_s=60)
    assert caught.value.permanent and "Traceback" in caught.value.traceback
    assert [c.attempts for c in modal_service.calls.values()] == [1]


async def test_a_call_that_outlives_the_poll_timeout_is_polled_until_it_ends(
    modal_service: ModalServicer,
) -> None:
    modal_service.held = True
    beats: list[dict[str, Any]] = []
    running = asyncio.create_task(
        backend(poll_s=0.1, heartbeat=beats.append).call(FUNCTION, PAYLOAD, timeout_s=60)
    )
    await modal_service.until(lambda: modal_service.polls >= 3)
    modal_service.release()
    assert_onboarding_result(await running)
    # Each poll that timed out heartbeated the same live call.
    assert len(beats) >= 3 and {b["call_id"] for b in beats} == set(modal_service.calls)
    assert modal_service.spawns == 1


async def test_a_call_past_its_deadline_is_cancelled_on_modal(modal_service: ModalServicer) -> None:
    modal_service.held = True
    with pytest.raises(ComputeTimeoutError, match=r"ran past its 0\.5s timeout"):
        await backend(poll_s=0.1, grace_s=0).call(FUNCTION, PAYLOAD, timeout_s=0.5)
    assert modal_service.cancelled == list(modal_service.calls)


async def test_reattaching_by_call_id_reads_the_same_call(modal_service: ModalServicer) -> None:
    modal_service.held = True
    first = asyncio.create_task(
        backend(cancel_remote_on_cancel=lambda: False).call(FUNCTION, PAYLOAD, timeout_s=60)
    )
    await modal_service.until(lambda: modal_service.polls >= 1)
    first.cancel()  # the worker goes away; the call stays
    with pytest.raises(asyncio.CancelledError):
        await first
    (call_id,) = modal_service.calls
    resumed = asyncio.create_task(backend().call(FUNCTION, PAYLOAD, timeout_s=60, resume_call_id=call_id))
    await modal_service.until(lambda: modal_service.polls >= 2)
    modal_service.release()
    assert_onboarding_result(await resumed)
    assert modal_service.spawns == 1 and modal_service.cancelled == []


async def test_cancelling_the_caller_cancels_the_call(modal_service: ModalServicer) -> None:
    modal_service.held = True
    running = asyncio.create_task(backend().call(FUNCTION, PAYLOAD, timeout_s=60))
    await modal_service.until(lambda: modal_service.polls >= 1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert modal_service.cancelled == list(modal_service.calls)
    (call,) = modal_service.calls.values()
    assert call.attempts == 1  # terminated before its body ran


# -- the service failing in each of Modal's ways ----------------------------------------------------


async def test_an_input_refused_at_capacity_is_a_retryable_overload(modal_service: ModalServicer) -> None:
    modal_service.capacity = 1
    modal_service.held = True
    first = asyncio.create_task(backend().call(FUNCTION, PAYLOAD, timeout_s=60))
    await modal_service.until(lambda: modal_service.spawns == 1)
    with pytest.raises(ComputeError, match="out of capacity") as caught:
        await backend().call(FUNCTION, PAYLOAD, timeout_s=60)
    assert (caught.value.error_type, caught.value.permanent) == ("ModalOverloaded", False)
    assert modal_service.rejected == 1 and modal_service.spawns == 1
    modal_service.release()
    assert_onboarding_result(await first)


async def test_an_input_lost_to_a_preempted_container_is_rescheduled_on_the_same_call(
    modal_service: ModalServicer,
) -> None:
    modal_service.preempt = 1
    assert_onboarding_result(await backend().call(FUNCTION, PAYLOAD, timeout_s=60))
    (call,) = modal_service.calls.values()
    assert call.attempts == 2 and modal_service.spawns == 1


async def test_an_input_preempted_past_its_retries_fails_and_the_next_attempt_spawns_anew(
    modal_service: ModalServicer,
) -> None:
    modal_service.preempt = 3  # the deployment allows 2 retries: 3 attempts, all lost
    beats: list[dict[str, Any]] = []
    with pytest.raises(ComputeError, match="preempted") as caught:
        await backend(heartbeat=beats.append).call(FUNCTION, PAYLOAD, timeout_s=60)
    assert (caught.value.error_type, caught.value.permanent) == ("ModalRemoteFailure", False)
    assert CallCheckpoint.model_validate(beats[-1]).finished
    assert_onboarding_result(
        await backend(previous_details=lambda: beats).call(FUNCTION, PAYLOAD, timeout_s=60)
    )
    assert [c.attempts for c in modal_service.calls.values()] == [3, 1]


async def test_a_connection_lost_while_polling_keeps_the_call_for_the_retry(
    modal_service: ModalServicer,
) -> None:
    # Past the SDK's own retries (1 + 3), grpclib's StreamTerminatedError reaches the backend.
    modal_service.poll_resets = 4
    beats: list[dict[str, Any]] = []
    with pytest.raises(ComputeError, match="could not reach Modal") as caught:
        await backend(heartbeat=beats.append).call(FUNCTION, PAYLOAD, timeout_s=60)
    assert (caught.value.error_type, caught.value.permanent) == ("ModalUnavailable", False)
    assert not CallCheckpoint.model_validate(beats[-1]).finished
    assert_onboarding_result(
        await backend(previous_details=lambda: beats).call(FUNCTION, PAYLOAD, timeout_s=60)
    )
    assert modal_service.spawns == 1


async def test_an_unknown_call_id_is_gone_and_not_reattached(modal_service: ModalServicer) -> None:
    beats: list[dict[str, Any]] = []
    with pytest.raises(ComputeError, match="no longer exists on Modal") as caught:
        await backend(heartbeat=beats.append).call(
            FUNCTION, PAYLOAD, timeout_s=60, resume_call_id="fc-unknown"
        )
    assert (caught.value.error_type, caught.value.permanent) == ("CallNotFound", False)
    assert CallCheckpoint.model_validate(beats[-1]).finished
    assert modal_service.spawns == 0


async def test_an_undeployed_function_is_a_permanent_error_naming_the_deploy(
    modal_service: ModalServicer,
) -> None:
    with pytest.raises(
        ComputeError, match=r"not deployed on Modal .*modal deploy modal_app/app\.py"
    ) as caught:
        await backend().call("task_not_deployed", PAYLOAD, timeout_s=60)
    assert (caught.value.error_type, caught.value.permanent) == ("NotDeployed", True)
    assert "Lookup failed for Function 'task_not_deployed'" in str(caught.value)
    assert modal_service.rpcs == ["FunctionGet"]


async def test_an_expired_output_is_a_permanent_error(modal_service: ModalServicer) -> None:
    modal_service.held = True
    running = asyncio.create_task(backend(poll_s=0.1).call(FUNCTION, PAYLOAD, timeout_s=60))
    await modal_service.until(lambda: modal_service.polls >= 1)
    modal_service.expire(next(iter(modal_service.calls)))
    with pytest.raises(ComputeError, match="expired on Modal before it was collected") as caught:
        await running
    assert (caught.value.error_type, caught.value.permanent) == ("OutputExpired", True)


async def test_a_rejected_token_is_a_permanent_auth_error(modal_service: ModalServicer) -> None:
    modal_service.token = ("ak-other", "as-other")
    with pytest.raises(ComputeError, match="check MODAL_TOKEN_ID and MODAL_TOKEN_SECRET") as caught:
        await backend().call(FUNCTION, PAYLOAD, timeout_s=60)
    assert (caught.value.error_type, caught.value.permanent) == ("ModalAuth", True)
    assert modal_service.spawns == 0


# -- loopback only ----------------------------------------------------------------------------------

_PROBE = """
import asyncio, json, socket, sys
connected = []
def audit(event, args):
    if event == "socket.connect":
        connected.append(repr(args[1]))
    if event == "socket.getaddrinfo":
        connected.append("lookup " + repr(args[0]))
sys.addaudithook(audit)
import modal
from activities.modal_backend import ModalBackend
async def main():
    client = await modal.Client.from_env.aio()
    await client.hello.aio()
    raw = await ModalBackend(poll_s=0.2).call("phase_0_onboarding", json.loads(sys.argv[1]), timeout_s=60)
    print(json.dumps({"function": raw["function"], "connected": sorted(set(connected))}))
asyncio.run(main())
"""


def test_a_fresh_process_talks_to_loopback_only(
    local_modal: LocalModal, modal_service: ModalServicer
) -> None:
    env = {**local_modal.env, "PATH": "", "MODAL_CONFIG_PATH": "/nonexistent/modal.toml", "PYTHONPATH": "."}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(PAYLOAD)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["function"] == FUNCTION
    assert report["connected"] and all("127.0.0.1" in c for c in report["connected"]), report["connected"]
    assert modal_service.rpcs[0] == "ClientHello" and "FunctionMap" in modal_service.rpcs
