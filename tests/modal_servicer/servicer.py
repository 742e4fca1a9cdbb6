"""A local Modal: a servicer of Modal's gRPC API that the real SDK client talks to.

    server = LocalModal.start()               # grpclib on 127.0.0.1:<free port>, in its own thread
    os.environ.update(server.env)             # MODAL_SERVER_URL, MODAL_TOKEN_ID, MODAL_TOKEN_SECRET
    call = await modal.Function.from_name("boomerang", "phase_0_onboarding").spawn.aio(payload)
    assert (await call.get.aio(timeout=5))["ok"]
    server.stop()

`ModalServicer` subclasses the service base published with the SDK
(`modal_proto.api_grpc.ModalClientBase`) and serves the RPCs that `ModalBackend`'s use
of the SDK (1.6) sends; every other RPC answers UNIMPLEMENTED and is recorded in
`unimplemented`, so a new call made by a newer SDK shows up as a failing test:

- `ClientHello`, and the token the client sends with every RPC (x-modal-token-id/secret);
- `FunctionGet`: a function of the deployed app (`modal_app.app`), looked up by app and name;
- `FunctionMap`: one spawned input, pipelined in the request (so no `FunctionPutInputs`);
- `FunctionGetOutputs`: waits up to the request's timeout for the output;
- `FunctionCallCancel`: terminates the call's input.

Payloads cross the wire as they do on Modal: the client serialises its arguments, the
servicer decodes them and encodes the reply with the SDK's own helpers
(`modal._serialization`), and the reply comes from the deployed function's real body
(`Function.local`, the code its container would run).

It misbehaves as the real service does, on request: `capacity` refuses inputs past it
with RESOURCE_EXHAUSTED; `preempt` loses the next attempts' containers (an input is
rescheduled up to the function's `retries`, then fails as an internal failure);
`held` keeps inputs running past any poll until `release()`; `expire()` drops an
output; `poll_errors` fails the next polls with those gRPC statuses (the SDK retries
UNAVAILABLE three times itself) and `poll_resets` resets the next polls' streams;
unknown call ids and undeployed names are NOT_FOUND;
a wrong token is UNAUTHENTICATED. `until()` waits for a condition instead of sleeping.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast

import modal
from google.protobuf import empty_pb2
from grpclib import GRPCError, Status
from grpclib.server import Server, Stream
from modal._serialization import (
    deserialize_data_format,
    pickle_exception,
    pickle_traceback,
    serialize_data_format,
)
from modal.types import FunctionInfo
from modal_proto import api_pb2
from modal_proto.api_grpc import ModalClientBase

TOKEN_ID = "ak-local-modal"
TOKEN_SECRET = "as-local-modal-secret"
_Result = api_pb2.GenericResult


@dataclass
class Call:
    """One spawned input and what became of it."""

    call_id: str
    function: str
    args: bytes
    data_format: api_pb2.DataFormat.ValueType
    retries: int
    attempts: int = 0
    cancelled: bool = False
    expired: bool = False
    result: api_pb2.GenericResult | None = None
    wake: threading.Event = field(default_factory=threading.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


def deployed_functions(module: ModuleType) -> dict[str, modal.Function[..., Any, Any]]:
    """The functions `modal deploy <module>` would create, by name."""
    return {name: value for name, value in vars(module).items() if isinstance(value, modal.Function)}


def _definition(name: str, info: FunctionInfo) -> api_pb2.FunctionData:
    """The deployed function as `FunctionGet` describes it: resources, timeout, retries."""
    cpu = info.cpu[0] if isinstance(info.cpu, tuple) else info.cpu or 0.125
    memory = info.memory_mib[0] if isinstance(info.memory_mib, tuple) else info.memory_mib or 128
    gpus = [api_pb2.GPUConfig(gpu_type=gpu, count=count) for gpu, count in info.gpus]
    function = api_pb2.Function(
        function_name=name,
        resources=api_pb2.Resources(
            milli_cpu=round(cpu * 1000), memory_mb=memory, gpu_config=gpus[0] if gpus else None
        ),
        timeout_secs=info.timeout,
        retry_policy=api_pb2.FunctionRetryPolicy(retries=info.max_retries or 0),
    )
    return api_pb2.FunctionData(
        function_name=name,
        function_type=api_pb2.Function.FUNCTION_TYPE_FUNCTION,
        timeout_secs=info.timeout,
        ranked_functions=[api_pb2.FunctionData.RankedFunction(rank=0, function=function)],
    )


class ModalServicer(ModalClientBase):
    """The service side; see the module docstring. State lives in the server's loop."""

    def __init__(self, app_name: str, functions: Mapping[str, modal.Function[..., Any, Any]]) -> None:
        self.app_name = app_name
        self.functions = dict(functions)
        # What `modal deploy` would record for each function, read offline from its definition.
        self.definitions = {name: _definition(name, fn.info()) for name, fn in self.functions.items()}
        self.token = (TOKEN_ID, TOKEN_SECRET)
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self.reset()

    def reset(self) -> None:
        """Forget calls and counters and clear the misbehaviours (between tests)."""
        self.release()
        self.token = (TOKEN_ID, TOKEN_SECRET)
        self.capacity: int | None = None
        self.preempt = 0
        self.held = False
        self.calls: dict[str, Call] = {}
        self.rpcs: list[str] = []
        self.unimplemented: list[str] = []
        self.rejected = 0
        self.cancelled: list[str] = []
        self.polls = 0
        self.poll_errors: list[Status] = []
        self.poll_resets = 0
        # Autoscaler overrides by function name, as `Function.autoscaler.update` leaves them.
        self.autoscaler: dict[str, api_pb2.AutoscalerSettings] = {}

    # -- test controls ----------------------------------------------------------------------------

    @property
    def spawns(self) -> int:
        return len(self.calls)

    @property
    def in_flight(self) -> int:
        return sum(1 for c in self.calls.values() if c.result is None)

    def release(self) -> None:
        """Let held inputs run to completion (and any held from now on)."""
        self.held = False
        for call in getattr(self, "calls", {}).values():
            call.wake.set()

    def expire(self, call_id: str) -> None:
        """Drop the call's output, as Modal does once it has been kept long enough."""
        self.calls[call_id].expired = True
        self._notify()

    async def until(self, condition: Callable[[], bool], *, timeout_s: float = 30.0) -> None:
        """Wait (off the caller's loop) until `condition()` holds after some change here."""

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(condition, timeout_s)

        if not await asyncio.to_thread(wait):
            raise AssertionError(f"the local Modal never reached {condition.__doc__ or condition}")

    # -- the RPCs the SDK sends -------------------------------------------------------------------

    async def ClientHello(self, stream: Stream[empty_pb2.Empty, api_pb2.ClientHelloResponse]) -> None:
        await self._receive(stream, "ClientHello")
        await stream.send_message(api_pb2.ClientHelloResponse())

    async def FunctionGet(
        self, stream: Stream[api_pb2.FunctionGetRequest, api_pb2.FunctionGetResponse]
    ) -> None:
        request = await self._receive(stream, "FunctionGet")
        name = request.object_tag
        if request.app_name != self.app_name or name not in self.functions:
            raise GRPCError(Status.NOT_FOUND, f"App '{request.app_name}' has no function '{name}' deployed")
        formats = [api_pb2.DATA_FORMAT_PICKLE, api_pb2.DATA_FORMAT_CBOR]
        metadata = api_pb2.FunctionHandleMetadata(
            function_name=name,
            function_type=api_pb2.Function.FUNCTION_TYPE_FUNCTION,
            supported_input_formats=formats,
            supported_output_formats=formats,
        )
        response = api_pb2.FunctionGetResponse(
            function_id=f"fu-{name}", handle_metadata=metadata, function=self.definitions[name]
        )
        await stream.send_message(response)

    async def FunctionUpdateSchedulingParams(
        self,
        stream: Stream[
            api_pb2.FunctionUpdateSchedulingParamsRequest, api_pb2.FunctionUpdateSchedulingParamsResponse
        ],
    ) -> None:
        request = await self._receive(stream, "FunctionUpdateSchedulingParams")
        name = request.function_id.removeprefix("fu-")
        if name not in self.functions:
            raise GRPCError(Status.NOT_FOUND, f"no function {request.function_id}")
        current = self.autoscaler.setdefault(name, api_pb2.AutoscalerSettings())
        current.MergeFrom(request.settings)  # fields the request leaves unset keep their value
        self._notify()
        await stream.send_message(api_pb2.FunctionUpdateSchedulingParamsResponse(current_settings=current))

    async def FunctionMap(
        self, stream: Stream[api_pb2.FunctionMapRequest, api_pb2.FunctionMapResponse]
    ) -> None:
        request = await self._receive(stream, "FunctionMap")
        name = request.function_id.removeprefix("fu-")
        if name not in self.functions or len(request.pipelined_inputs) != 1:
            raise GRPCError(Status.INVALID_ARGUMENT, f"cannot map {request.function_id}")
        if self.capacity is not None and self.in_flight >= self.capacity:
            self.rejected += 1
            self._notify()
            raise GRPCError(Status.RESOURCE_EXHAUSTED, f"Function '{name}' is at capacity: input queue full")
        item = request.pipelined_inputs[0].input
        # Modal reschedules a lost input up to the function's `retries`.
        retries = self.definitions[name].ranked_functions[0].function.retry_policy.retries
        call = Call(f"fc-{next(self._ids):06d}", name, item.args, item.data_format, retries)
        self.calls[call.call_id] = call
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._run, args=(call, loop), name=call.call_id, daemon=True).start()
        self._notify()
        input_id = f"in-{call.call_id}"
        await stream.send_message(
            api_pb2.FunctionMapResponse(
                function_call_id=call.call_id,
                pipelined_inputs=[api_pb2.FunctionPutInputsResponseItem(idx=0, input_id=input_id)],
                retry_policy=api_pb2.FunctionRetryPolicy(retries=retries),
            )
        )

    async def FunctionGetOutputs(
        self, stream: Stream[api_pb2.FunctionGetOutputsRequest, api_pb2.FunctionGetOutputsResponse]
    ) -> None:
        request = await self._receive(stream, "FunctionGetOutputs")
        call = self._call(request.function_call_id)
        self.polls += 1
        self._notify()
        if self.poll_errors:
            raise GRPCError(self.poll_errors.pop(0), "the outputs service is unavailable")
        if self.poll_resets > 0:  # RST_STREAM: the client sees the stream terminated
            self.poll_resets -= 1
            await stream.cancel()
            return
        if call.result is None and not call.expired:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.finished.wait(), timeout=max(request.timeout, 0))
        if call.expired:  # no output and nothing unfinished: the SDK's sign of an expired output
            await stream.send_message(api_pb2.FunctionGetOutputsResponse(num_unfinished_inputs=0))
        elif call.result is None:  # still running: the SDK raises TimeoutError
            await stream.send_message(api_pb2.FunctionGetOutputsResponse(num_unfinished_inputs=1))
        else:
            output = api_pb2.FunctionGetOutputsItem(
                result=call.result, idx=0, input_id=f"in-{call.call_id}", data_format=call.data_format
            )
            await stream.send_message(api_pb2.FunctionGetOutputsResponse(outputs=[output]))

    async def FunctionCallCancel(
        self, stream: Stream[api_pb2.FunctionCallCancelRequest, empty_pb2.Empty]
    ) -> None:
        request = await self._receive(stream, "FunctionCallCancel")
        call = self._call(request.function_call_id)
        self.cancelled.append(call.call_id)
        call.cancelled = True
        call.wake.set()
        if call.result is None:  # a terminated input reports no detail
            self._finish(call, _Result(status=_Result.GENERIC_STATUS_TERMINATED))
        await stream.send_message(empty_pb2.Empty())

    # -- the service itself -----------------------------------------------------------------------

    async def _receive(self, stream: Stream[Any, Any], rpc: str) -> Any:
        self.rpcs.append(rpc)
        metadata = cast(Mapping[str, Any], stream.metadata or {})
        sent = metadata.get("x-modal-token-id"), metadata.get("x-modal-token-secret")
        if sent != self.token:
            raise GRPCError(Status.UNAUTHENTICATED, "Invalid token id or secret")
        return await stream.recv_message()

    def _call(self, call_id: str) -> Call:
        if call_id not in self.calls:
            raise GRPCError(Status.NOT_FOUND, f"Function call {call_id} not found")
        return self.calls[call_id]

    def _run(self, call: Call, loop: asyncio.AbstractEventLoop) -> None:
        """One input in its container (a thread): attempts until one is not preempted."""
        result = _Result(status=_Result.GENERIC_STATUS_INTERNAL_FAILURE, exception="input lost: preempted")
        while call.attempts <= call.retries:
            call.attempts += 1
            if self.held:
                call.wake.wait()
            if call.cancelled:
                return
            if self.preempt > 0:  # the container is gone before its output: Modal reschedules
                self.preempt -= 1
                continue
            result = self._execute(call)
            break
        loop.call_soon_threadsafe(self._finish, call, result)

    def _execute(self, call: Call) -> api_pb2.GenericResult:
        args, kwargs = deserialize_data_format(call.args, call.data_format, None)
        try:
            value = self.functions[call.function].local(*args, **kwargs)
        except Exception as exc:  # what a container sends when the body raises
            serialized_tb, line_cache = pickle_traceback(exc, call.call_id)
            return _Result(
                status=_Result.GENERIC_STATUS_FAILURE,
                exception=repr(exc),
                traceback=traceback.format_exc(),
                data=pickle_exception(exc),
                serialized_tb=serialized_tb,
                tb_line_cache=line_cache,
            )
        data = serialize_data_format(value, call.data_format)
        return _Result(status=_Result.GENERIC_STATUS_SUCCESS, data=data)

    def _finish(self, call: Call, result: api_pb2.GenericResult) -> None:
        if call.result is None:
            call.result = result
            call.finished.set()
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()


def _unimplemented(rpc: str) -> Callable[[ModalServicer, Stream[Any, Any]], Any]:
    async def handler(self: ModalServicer, stream: Stream[Any, Any]) -> None:
        self.unimplemented.append(rpc)
        raise GRPCError(
            Status.UNIMPLEMENTED, f"{rpc} is not served by the local Modal (tests/modal_servicer)"
        )

    return handler


for _rpc in ModalClientBase.__abstractmethods__ - set(vars(ModalServicer)):
    setattr(ModalServicer, _rpc, _unimplemented(_rpc))
# mypy cannot see the handlers added above, hence the two ignores for "abstract".
abc.update_abstractmethods(ModalServicer)  # type: ignore[type-abstract]


class LocalModal:
    """`ModalServicer` behind a grpclib server on loopback, in a thread with its own loop."""

    def __init__(self, servicer: ModalServicer) -> None:
        self.servicer = servicer
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="local-modal", daemon=True)
        self._server: Server | None = None
        self.port = 0

    @classmethod
    def start(cls, module: ModuleType | None = None) -> LocalModal:
        """Serve the app defined in `module` (default `modal_app.app`) on a free loopback port."""
        if module is None:
            import modal_app.app

            module = modal_app.app
        servicer = ModalServicer(module.app.name or "", deployed_functions(module))  # type: ignore[abstract]
        local = cls(servicer)
        local._thread.start()
        local.port = asyncio.run_coroutine_threadsafe(local._serve(), local._loop).result(10)
        return local

    async def _serve(self) -> int:
        # grpclib binds a server to the loop current at construction: build it in ours.
        self._server = Server([self.servicer])
        await self._server.start("127.0.0.1", 0)
        listening = cast(asyncio.Server | None, self._server._server)
        assert listening is not None
        port: int = listening.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What points the SDK here: set it before the SDK's client is first created."""
        return {"MODAL_SERVER_URL": self.url, "MODAL_TOKEN_ID": TOKEN_ID, "MODAL_TOKEN_SECRET": TOKEN_SECRET}

    def stop(self) -> None:
        self.servicer.release()

        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
