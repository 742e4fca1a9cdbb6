"""Traces across the compute boundary: a function's spans join its caller's trace.

The dispatch activity puts the W3C trace context of its span (`traceparent`,
`tracestate`) in the payload under `TRACE_KEY`; `functions.invoke` takes it out
before the request is validated (so any request model accepts the payload) and runs
the body in a span that is a child of the activity's:

    payload = with_trace_context(payload)        # caller: inside the activity's span
    with compute_span(name, payload.pop(TRACE_KEY, None)):   # compute process or container
        ...

Off unless the environment says where spans go (`tracing_enabled`): the compute
process installs its tracer provider from the same `OTEL_*` variables as the worker
(on Modal: put them in the `boomerang-secrets` Secret). Only the OpenTelemetry API is
imported here; the SDK and the OTLP exporter are imported when tracing is on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACE_KEY = "_trace"
# Boomerang's own switches; everything else is the standard OTEL_* set.
TRACING_ENV = "BOOMERANG_TRACING"
TRACES_FILE_ENV = "BOOMERANG_TRACES_FILE"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_TRUE = {"1", "true", "yes", "on"}
_FLUSH_TIMEOUT_MS = 2000

_propagator = TraceContextTextMapPropagator()


def tracing_enabled(env: Mapping[str, str]) -> bool:
    """On with BOOMERANG_TRACING=true, an OTLP endpoint or a traces file; OTEL_SDK_DISABLED wins."""
    if env.get("OTEL_SDK_DISABLED", "").lower() in _TRUE or env.get("OTEL_TRACES_EXPORTER") == "none":
        return False
    if env.get(TRACING_ENV, "").lower() in _TRUE:
        return True
    return any(env.get(name) for name in (*_ENDPOINTS, TRACES_FILE_ENV))


def tracer_provider_installed() -> bool:
    """Whether this process has a real tracer provider (ours, or a test's)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def install_tracer_provider(service_name: str, env: Mapping[str, str] | None = None) -> bool:
    """Install the SDK tracer provider the environment asks for; True when one is installed.

    Exporters: `OTEL_TRACES_EXPORTER` (comma-separated: `otlp`, the default, over
    HTTP/protobuf configured by `OTEL_EXPORTER_OTLP_*`; `console`, on stderr), plus
    JSON lines appended to `BOOMERANG_TRACES_FILE` when it is set. `OTEL_SERVICE_NAME`
    overrides `service_name`. A provider already installed is kept.
    """
    env = os.environ if env is None else env
    if tracer_provider_installed():
        return True
    if not tracing_enabled(env):
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    names = {n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()}
    # A traces file alone asks for no collector: OTLP's default endpoint would only log failures.
    file_only = not (
        env.get(TRACING_ENV, "").lower() in _TRUE
        or any(env.get(n) for n in _ENDPOINTS)
        or "OTEL_TRACES_EXPORTER" in env
    )
    if "otlp" in names and not file_only:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in names:
        provider.add_span_processor(SimpleSpanProcessor(_json_lines_exporter(sys.stderr)))
    if path := env.get(TRACES_FILE_ENV):
        # Line-buffered append: several processes (worker, compute processes) share one file.
        stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 -- lives as long as the process
        provider.add_span_processor(SimpleSpanProcessor(_json_lines_exporter(stream)))
    trace.set_tracer_provider(provider)
    return True


def _json_lines_exporter(out: IO[str]) -> Any:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    def one_line(span: ReadableSpan) -> str:
        return f"{span.to_json(indent=None)}\n"

    return ConsoleSpanExporter(out=out, formatter=one_line)


def with_trace_context(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` plus the current span's W3C context under `TRACE_KEY` (unchanged when there is none)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return {**payload, TRACE_KEY: carrier} if carrier else payload


@contextmanager
def compute_span(function: str, carrier: object) -> Iterator[None]:
    """Run a compute body in a span that continues the caller's trace, when tracing is on."""
    if not isinstance(carrier, dict) or not install_tracer_provider("boomerang-compute"):
        yield
        return
    parent = _propagator.extract({str(k): str(v) for k, v in carrier.items()})
    tracer = trace.get_tracer("modal_app")
    try:
        with tracer.start_as_current_span(
            f"compute {function}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"function": function},
        ):
            yield
    finally:
        # A container may be frozen or stopped between calls: send this call's spans now.
        flush = getattr(trace.get_tracer_provider(), "force_flush", None)
        if flush is not None:
            flush(_FLUSH_TIMEOUT_MS)
