"""One way to reach Temporal, for the worker, the client, the CLI and the tests."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from boomerang.observability.tracing import tracing_interceptors
from boomerang.settings import Settings


def tls_config(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        return TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    # Temporal Cloud with an API key needs TLS but no client certificate.
    return settings.temporal_tls or settings.temporal_api_key is not None


async def connect_temporal(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """A client; `runtime` is the process's one Runtime (metrics, core logs), built in `main()`.

    Once the process traces (`observability.tracing.configure_tracing`), the client and
    every worker built on it carry Temporal's tracing interceptor.
    """
    api_key = settings.temporal_api_key
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=tls_config(settings),
        api_key=api_key.get_secret_value() if api_key else None,
        runtime=runtime,
        interceptors=[*tracing_interceptors(), *interceptors],
    )
