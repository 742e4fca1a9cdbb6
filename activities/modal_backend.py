"""Modal compute: the deployed app's functions, spawned once per task and re-attached on retry.

    backend = ModalBackend(app_name="boomerang", limits=ConcurrencyLimits(default=8))
    result = await backend.call("phase_0_onboarding", payload, timeout_s=3600)

A call spawns the deployed function (`modal deploy modal_app/app.py`) and heartbeats
the FunctionCall id *before* waiting on it, so a worker that dies mid-call leaves the
id in Temporal; the retried activity finds it in `activity.info().heartbeat_details`
and re-attaches to the same call instead of paying for the GPU twice. While waiting it
polls `get(timeout=poll_s)` and heartbeats after each poll, which is also how Temporal
delivers a cancellation: a cancel that the workflow asked for cancels the remote call.
A cancel caused by the worker shutting down or a heartbeat timeout leaves the call
running, because the next attempt will re-attach to it.

Outside an activity (scripts, tests) the hooks do nothing and `resume_call_id` does
what the heartbeat details would. Modal's lookups are keyword options so a test can
stand a double of the remote service in for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

import modal
import modal.exception as mx
from grpclib.exceptions import ProtocolError, StreamTerminatedError
from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import activity

from activities.compute import ComputeError, ComputeTimeoutError, cancel_is_final
from activities.limits import ConcurrencyLimits, SlotLimiter
from modal_app.contracts import FunctionError
from modal_app.functions import UnknownFunctionError, is_permanent
from modal_app.registry import Registry, load_registry

MINUTES = 60.0


# --- Modal's public call surface, as far as this backend uses it -------------------------------


class _Spawn(Protocol):
    async def aio(self, payload: dict[str, Any], /) -> RemoteCall: ...


class _Get(Protocol):
    async def aio(self, timeout: float | None = None) -> Any: ...  # noqa: ASYNC109 (Modal's signature)


class _Cancel(Protocol):
    async def aio(self) -> None: ...


class RemoteFunction(Protocol):
    """`modal.Function` as this backend uses it."""

    @property
    def spawn(self) -> _Spawn: ...


class RemoteCall(Protocol):
    """`modal.FunctionCall` as this backend uses it."""

    @property
    def object_id(self) -> str: ...
    @property
    def get(self) -> _Get: ...
    @property
    def cancel(self) -> _Cancel: ...


FunctionLookup = Callable[[str, str], RemoteFunction]
CallLookup = Callable[[str], RemoteCall]
Heartbeat = Callable[[dict[str, Any]], None]


def modal_function(app_name: str, name: str) -> RemoteFunction:
    """The deployed function (lazy: a missing deployment shows up at `spawn`)."""
    return cast(RemoteFunction, modal.Function.from_name(app_name, name))


def modal_call(call_id: str) -> RemoteCall:
    """An existing FunctionCall by id (lazy: an unknown id shows up at `get`)."""
    return cast(RemoteCall, modal.FunctionCall.from_id(call_id))


# --- Temporal hooks ------------------------------------------------------------------------------


def activity_heartbeat(details: dict[str, Any]) -> None:
    """Record `details` on the running activity; a no-op outside one."""
    if activity.in_activity():
        activity.heartbeat(details)


def previous_heartbeat() -> Sequence[Any]:
    """What the previous attempt of the running activity heartbeated last, if anything."""
    return activity.info().heartbeat_details if activity.in_activity() else ()


def registered_gpu(registry: Registry) -> Callable[[str], str | None]:
    """The GPU a function is deployed with, from the registry (for GPU limits)."""

    def gpu_of(name: str) -> str | None:
        try:
            return registry.lookup(name).gpu
        except UnknownFunctionError:
            return None

    return gpu_of


# --- Heartbeat details ---------------------------------------------------------------------------


class CallCheckpoint(BaseModel):
    """What an attempt heartbeats so that the next one can re-attach.

    `finished` marks a call whose outcome is known (it failed): re-attaching to it
    would only return the same failure, so the next attempt spawns a new one.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    function: str
    call_id: str
    spawned_at: float
    finished: bool = False

    @classmethod
    def from_details(cls, details: Sequence[Any], function: str) -> CallCheckpoint | None:
        """The live call recorded for `function` in heartbeat details, or None."""
        if not details:
            return None
        try:
            checkpoint = cls.model_validate(details[-1])
        except ValidationError:
            return None  # an empty liveness heartbeat or someone else's details
        if checkpoint.function != function or checkpoint.finished:
            return None
        return checkpoint


# --- Errors --------------------------------------------------------------------------------------


class _CallFailed(Exception):
    """A mapped failure, and whether the remote call is over (so a retry must not re-attach)."""

    def __init__(self, error: ComputeError, *, finished: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.finished = finished


@dataclass(frozen=True)
class _Rule:
    """How one kind of Modal failure reaches the caller.

    `finished`: the call's outcome is known, so a retry spawns anew rather than
    re-attaching to the same failure. `message` may use {where} and {detail}.
    """

    kinds: tuple[type[BaseException], ...]
    error_type: str
    permanent: bool
    finished: bool
    message: str


_COMMON_RULES = (
    _Rule(
        (mx.AuthError, mx.PermissionDeniedError),
        "ModalAuth",
        permanent=True,
        finished=False,
        message="Modal rejected the credentials for {where}: {detail}; "
        "check MODAL_TOKEN_ID and MODAL_TOKEN_SECRET (or run `modal token new`)",
    ),
    # Modal has already applied the function's own retries by the time this arrives;
    # another full timeout of GPU would most likely end the same way.
    _Rule(
        (mx.FunctionTimeoutError,),
        "FunctionTimeout",
        permanent=True,
        finished=True,
        message="{where} ran past its timeout on Modal: {detail}",
    ),
    _Rule(
        (mx.OutputExpiredError,),
        "OutputExpired",
        permanent=True,
        finished=True,
        message="the result of {where} expired on Modal before it was collected; run the task again",
    ),
    _Rule(
        (mx.InputCancellation,),
        "CallCancelled",
        permanent=True,
        finished=True,
        message="{where} was cancelled on Modal, outside this task",
    ),
    _Rule(
        (mx.ResourceExhaustedError,),
        "ModalOverloaded",
        permanent=False,
        finished=False,
        message="Modal is out of capacity or quota for {where}: {detail}",
    ),
    # Bad arguments, a payload Modal cannot carry, a result this client cannot read,
    # an SDK Modal no longer serves: retrying changes nothing.
    _Rule(
        (
            mx.InvalidError,
            mx.SerializationError,
            mx.DeserializationError,
            mx.RequestSizeError,
            mx.ExecutionError,
            mx.VersionError,
        ),
        "ModalRejected",
        permanent=True,
        finished=True,
        message="Modal cannot run {where}: {detail}",
    ),
    # A crashed or terminated container (no detail), or an internal failure Modal
    # itself calls retriable: a fresh call may well succeed.
    _Rule(
        (mx.RemoteError, mx.InternalFailure),
        "ModalRemoteFailure",
        permanent=False,
        finished=True,
        message="{where} failed on Modal: {detail}",
    ),
    # Talking to Modal failed (ConnectionError, ServiceError, InternalError, ...): the
    # call itself may be fine, so the retry re-attaches to it. Past its own retries the
    # SDK re-raises a reset or broken HTTP/2 stream as grpclib raised it.
    _Rule(
        (mx.Error, OSError, StreamTerminatedError, ProtocolError),
        "ModalUnavailable",
        permanent=False,
        finished=False,
        message="could not reach Modal for {where}: {detail}",
    ),
)
_SPAWN_RULES = (
    _Rule(
        (mx.NotFoundError,),
        "NotDeployed",
        permanent=True,
        finished=True,
        message="{where} is not deployed on Modal ({detail}); run `modal deploy modal_app/app.py`",
    ),
    *_COMMON_RULES,
)
_POLL_RULES = (
    # The call is gone (expired, or from another workspace): a retry spawns a new one.
    _Rule(
        (mx.NotFoundError,),
        "CallNotFound",
        permanent=False,
        finished=True,
        message="{where} no longer exists on Modal: {detail}",
    ),
    *_COMMON_RULES,
)


def map_error(exc: BaseException, *, app_name: str, name: str, call_id: str | None = None) -> ComputeError:
    """The `ComputeError` for a failure of spawning (`call_id=None`) or of waiting on a call."""
    return _map(exc, app_name=app_name, name=name, call_id=call_id).error


def _map(exc: BaseException, *, app_name: str, name: str, call_id: str | None) -> _CallFailed:
    where = f"{app_name}.{name}" + (f" (call {call_id})" if call_id else "")
    detail = f"{type(exc).__name__}: {exc}" if str(exc).strip() else type(exc).__name__
    tb = "".join(traceback.format_exception(exc))
    for rule in _SPAWN_RULES if call_id is None else _POLL_RULES:
        if isinstance(exc, rule.kinds):
            message = rule.message.format(where=where, detail=detail)
            error = ComputeError(message, error_type=rule.error_type, permanent=rule.permanent, traceback=tb)
            return _CallFailed(error, finished=rule.finished)
    # Anything else was raised by the function body and re-raised here by the SDK.
    error = ComputeError(
        f"{where} failed: {detail}", error_type=type(exc).__name__, permanent=is_permanent(exc), traceback=tb
    )
    return _CallFailed(error, finished=True)


def _decode(name: str, value: Any) -> dict[str, Any]:
    """The function's reply: `{"ok": result}`, `{"error": FunctionError}`, or a bare result.

    Bare results come from deployments older than the shared reply protocol.
    """
    if not isinstance(value, dict):
        error = ComputeError(
            f"{name} returned {type(value).__name__}, not a JSON object; redeploy modal_app/app.py",
            error_type="BadReply",
            permanent=True,
        )
        raise _CallFailed(error, finished=True)
    if set(value) == {"ok"}:
        return dict(value["ok"])
    if set(value) == {"error"}:
        failure = FunctionError.model_validate(value["error"])
        error = ComputeError(
            f"{name} failed: {failure.type}: {failure.message}",
            error_type=failure.type,
            permanent=failure.permanent,
            traceback=failure.traceback,
        )
        raise _CallFailed(error, finished=True)
    return dict(value)


# --- The backend ---------------------------------------------------------------------------------


class ModalBackend:
    """Runs compute functions on the deployed Modal app; see the module docstring."""

    # The heartbeat details are this backend's checkpoint (the call id): a caller that
    # heartbeats too would overwrite them, so callers leave heartbeating to it.
    heartbeats_itself: ClassVar[bool] = True

    def __init__(
        self,
        *,
        app_name: str = "boomerang",
        limits: SlotLimiter | None = None,
        poll_s: float = 5.0,
        grace_s: float = 5 * MINUTES,
        function_lookup: FunctionLookup = modal_function,
        call_lookup: CallLookup = modal_call,
        heartbeat: Heartbeat = activity_heartbeat,
        previous_details: Callable[[], Sequence[Any]] = previous_heartbeat,
        cancel_remote_on_cancel: Callable[[], bool] = cancel_is_final,
        gpu_of: Callable[[str], str | None] | None = None,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`poll_s` must stay well under the activity's heartbeat timeout (each poll
        heartbeats); `grace_s` is how long past `timeout_s` a call may take before this
        side gives up on it, to allow for queueing and cold starts, which Modal's own
        timeout does not count. `clock` is wall time because the spawn time travels to
        another worker in the heartbeat details.
        """
        if not app_name:
            raise ValueError("app_name must name the deployed Modal app")
        if poll_s <= 0 or grace_s < 0:
            raise ValueError("poll_s must be positive and grace_s not negative")
        self.app_name = app_name
        self.limits: SlotLimiter = limits or ConcurrencyLimits()
        self._poll_s = poll_s
        self._grace_s = grace_s
        self._function = function_lookup
        self._call = call_lookup
        self._heartbeat = heartbeat
        self._previous = previous_details
        self._final_cancel = cancel_remote_on_cancel
        self.registry = registry or load_registry()
        self._gpu_of = gpu_of or registered_gpu(self.registry)
        self._clock = clock
        self._unclaimed: set[asyncio.Future[None]] = set()

    async def call(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        timeout_s: float,
        heartbeat_every_s: float | None = None,
        resume_call_id: str | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Run `name` on `payload` (or re-attach to `resume_call_id`); raise `ComputeError`.

        Each poll heartbeats, so a poll never waits longer than `heartbeat_every_s`
        (what the caller's heartbeat timeout needs) nor than the configured `poll_s`.
        """
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        poll_s = min(self._poll_s, heartbeat_every_s or self._poll_s)
        checkpoint = CallCheckpoint.from_details(self._previous(), name)
        if resume_call_id is not None:
            checkpoint = CallCheckpoint(function=name, call_id=resume_call_id, spawned_at=self._clock())
        async with self.limits.slot(function=name, gpu=self._gpu_of(name), tenant=tenant):
            if checkpoint is None:
                checkpoint = await self._spawn(name, payload)
            handle = self._call(checkpoint.call_id)
            self._heartbeat(checkpoint.model_dump())
            try:
                return await self._wait(handle, checkpoint, timeout_s, poll_s)
            except _CallFailed as failed:
                if failed.finished:
                    # Sent with the failure: the next attempt must not re-attach to this call.
                    self._heartbeat(checkpoint.model_copy(update={"finished": True}).model_dump())
                raise failed.error from failed.__cause__
            except asyncio.CancelledError:
                if self._final_cancel():
                    await asyncio.shield(self._cancel(handle, checkpoint))
                raise

    async def aclose(self) -> None:
        """Nothing to close: the SDK's client belongs to the process."""

    async def _spawn(self, name: str, payload: dict[str, Any]) -> CallCheckpoint:
        try:
            function = self._function(self.app_name, name)
            spawning = asyncio.ensure_future(function.spawn.aio(payload))
            try:
                handle = await asyncio.shield(spawning)
            except asyncio.CancelledError:
                # The call may exist already, and no attempt will ever learn its id: stop it
                # once the spawn answers, or it runs (and bills) with nobody to collect it.
                spawning.add_done_callback(self._cancel_unclaimed)
                raise
        except Exception as exc:
            raise map_error(exc, app_name=self.app_name, name=name) from exc
        return CallCheckpoint(function=name, call_id=handle.object_id, spawned_at=self._clock())

    def _cancel_unclaimed(self, spawning: asyncio.Future[RemoteCall]) -> None:
        if spawning.cancelled() or spawning.exception() is not None:
            return
        task = asyncio.ensure_future(spawning.result().cancel.aio())
        self._unclaimed.add(task)
        task.add_done_callback(self._unclaimed.discard)

    async def _wait(
        self, handle: RemoteCall, checkpoint: CallCheckpoint, timeout_s: float, poll_s: float
    ) -> dict[str, Any]:
        deadline = checkpoint.spawned_at + timeout_s + self._grace_s
        while True:
            left = deadline - self._clock()
            if left <= 0:
                await asyncio.shield(self._cancel(handle, checkpoint))
                raise ComputeTimeoutError(checkpoint.function, timeout_s)
            try:
                value = await handle.get.aio(timeout=min(poll_s, left))
            except TimeoutError:
                # Modal 1.6 raises the builtin TimeoutError while the call is still running;
                # its own timeout classes (FunctionTimeoutError, ...) do not derive from it.
                self._heartbeat(checkpoint.model_dump())
                continue
            except (Exception, mx.InputCancellation) as exc:
                failed = _map(exc, app_name=self.app_name, name=checkpoint.function, call_id=handle.object_id)
                raise failed from exc
            return _decode(checkpoint.function, value)

    async def _cancel(self, handle: RemoteCall, checkpoint: CallCheckpoint) -> None:
        """Stop the remote call; a failure to reach Modal here must not hide why we stopped."""
        with contextlib.suppress(Exception):
            await handle.cancel.aio()
        self._heartbeat(checkpoint.model_copy(update={"finished": True}).model_dump())
