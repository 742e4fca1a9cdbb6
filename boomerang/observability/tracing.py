"""Traces: one trace from an HTTP request or a CLI command to the compute function.

Off by default. A process turns them on once, in its `main()`, from the standard
`OTEL_*` variables (`modal_app.telemetry.install_tracer_provider` says which):

    configure_tracing("boomerang-worker")      # BOOMERANG_TRACING=true or OTEL_EXPORTER_OTLP_ENDPOINT=...
    client = await connect_temporal(settings)  # carries `TracingInterceptor` once a provider is installed

The pieces, outermost first: FastAPI's own OpenTelemetry support (the API: one
server span per request, named by its route, on the global provider) or
`command_span` (the CLI) opens the root span; temporalio's `TracingInterceptor` on the client and the
worker carries it through the workflow and its activities; the dispatch activity
hands its span's context to the compute function (`modal_app.telemetry`), whose
span joins the trace in the compute process or the Modal container.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from opentelemetry import trace
from temporalio.contrib.opentelemetry import TracingInterceptor

from modal_app.telemetry import install_tracer_provider, tracer_provider_installed

__all__ = [
    "command_name",
    "command_span",
    "configure_tracing",
    "tracing_interceptors",
]

_TRACER = "boomerang"


def configure_tracing(service_name: str) -> bool:
    """Install the tracer provider the environment asks for (none by default); True when on."""
    return install_tracer_provider(service_name)


def tracing_interceptors() -> list[TracingInterceptor]:
    """Temporal's tracing interceptor when this process traces, else nothing.

    On the client it applies to every worker built on that client as well.
    """
    return [TracingInterceptor()] if tracer_provider_installed() else []


def command_name(body: Callable[..., object]) -> str:
    """A span name for what a CLI command runs, from the command it is defined in:
    `boomerang pipeline start` for `pipeline_start.<locals>.start` (never its arguments)."""
    command = body.__qualname__.split(".<locals>")[0]
    return f"boomerang {command.replace('_', ' ')}"


@contextmanager
def command_span(name: str, **attributes: str) -> Iterator[None]:
    """A root span around a CLI command, its spans sent before the process exits.

    The CLI leaves with `os._exit` (sdk-python #300), which skips the SDK's own flush at exit.
    """
    if not configure_tracing("boomerang-cli"):
        yield
        return
    try:
        with trace.get_tracer(_TRACER).start_as_current_span(name, attributes=attributes):
            yield
    finally:
        flush = getattr(trace.get_tracer_provider(), "force_flush", None)
        if flush is not None:
            flush()
