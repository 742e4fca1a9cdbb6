"""Property-based tests from the served OpenAPI (schemathesis): no input makes the API fail.

The app runs under uvicorn on 127.0.0.1 in a thread with its own event loop,
Temporal client and pool (the dev server and Postgres of the session), and is
driven over real HTTP. Runs it starts go to a queue no worker polls.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from boomerang.api import create_app
from boomerang.client import BoomerangClient
from boomerang.settings import Settings
from boomerang.store.recorder import open_pool
from boomerang.store.tokens import ApiRole
from tests.api import make_token
from tests.webhooks import SECRET


@dataclass
class Served:
    url: str = ""
    token: str = ""
    ready: threading.Event = field(default_factory=threading.Event)
    server: uvicorn.Server | None = None
    error: BaseException | None = None


def _serve(served: Served, address: str, conninfo: str) -> None:
    async def main() -> None:
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        pool = await open_pool(conninfo, min_size=1, max_size=4)
        try:
            served.token = await make_token(pool, f"fuzz-{uuid.uuid4().hex[:8]}", ApiRole.APPROVER)
            app = create_app(
                client=BoomerangClient(client, task_queue=f"tq-nobody-{uuid.uuid4().hex}"),
                pool=pool,
                settings=Settings(),
                webhook_secret=SECRET,
                timeout_s=5,
            )
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
            served.server = server
            serving = asyncio.create_task(server.serve())
            while not server.started and not serving.done():
                await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            served.url = f"http://127.0.0.1:{port}"
            served.ready.set()
            await serving
        finally:
            await pool.close()

    try:
        asyncio.run(main())
    except BaseException as exc:
        served.error = exc
        served.ready.set()


@pytest.fixture(scope="module")
def served_api(dev_env: WorkflowEnvironment, pg_conninfo: str) -> Iterator[Served]:
    served = Served()
    address = dev_env.client.service_client.config.target_host
    thread = threading.Thread(target=_serve, args=(served, address, pg_conninfo), daemon=True)
    thread.start()
    assert served.ready.wait(60), "the API did not start"
    if served.error is not None:
        raise served.error
    yield served
    assert served.server is not None
    served.server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def api_schema(served_api: Served) -> Any:
    return schemathesis.openapi.from_url(f"{served_api.url}/openapi.json")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_ROUTE = 100


def test_no_generated_input_is_a_server_error(served_api: Served, api_schema: Any) -> None:
    """Every operation, generated inputs valid and invalid, with an approver's token.

    (The operations are walked here rather than by `schemathesis.pytest.from_fixture`,
    which reads a pytest internal that pytest 9 removed.)
    """
    auth = {"Authorization": f"Bearer {served_api.token}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_ROUTE,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(base_url=served_api.url, headers=auth)
            case.validate_response(response, checks=CHECKS)

        check()


def test_the_openapi_document_names_every_route(served_api: Served, api_schema: Any) -> None:
    paths = set(api_schema.raw_schema["paths"])
    assert {
        "/kickoff",
        "/status/{run_id}",
        "/approvals",
        "/hitl/approve",
        "/runs/{run_id}/charter",
        "/health",
        "/webhooks/modal/task-complete",
        "/webhooks/dead-letters",
    } <= paths
    assert "HTTPBearer" in api_schema.raw_schema["components"]["securitySchemes"]


# Hostile JSON: what RFC 8259 forbids but Python's json accepts (NaN, Infinity, numbers
# that overflow, lone surrogates), deep nesting and long strings, at every POST route.
_SCALARS = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e308, -1e308])
    | st.integers()
    | st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=8)
    | st.text(max_size=30)
    | st.booleans()
    | st.none()
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_FIELDS = [
    "project_id",
    "brief",
    "context",
    "webhook_url",
    "run_id",
    "checkpoint",
    "decision",
    "task_id",
    "status",
]
_BODIES = st.one_of(
    st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=5).map(
        lambda d: json.dumps(d, allow_nan=True).encode()
    ),
    st.sampled_from([b'{"brief": NaN}', b'{"brief": Infinity}', b'{"context": {"x": -Infinity}}',
                     b'{"budget_usd": 1e400}', b'{"brief": "a\\ud800b"}', b'{"brief": "\xff\xfe"}',
                     b"[" * 5000 + b"]" * 5000, b'{"n": ' + b"9" * 5000 + b"}"]),
)  # fmt: skip


def test_hostile_json_bodies_are_never_a_server_error(served_api: Served, api_schema: Any) -> None:
    routes = [
        path for path, item in api_schema.raw_schema["paths"].items() if "post" in item and "{" not in path
    ]
    assert {"/kickoff", "/hitl/approve", "/webhooks/modal/task-complete"} <= set(routes)
    auth = {"Authorization": f"Bearer {served_api.token}", "content-type": "application/json"}

    @given(route=st.sampled_from(routes), body=_BODIES)
    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(route: str, body: bytes) -> None:
        response = httpx.post(f"{served_api.url}{route}", content=body, headers=auth, timeout=30)
        assert response.status_code < 500, (route, body[:200], response.text[:500])
        response.json()  # every answer is JSON a client can read

    check()


def test_size_limits_and_bounded_errors_over_real_http(served_api: Served) -> None:
    auth = {"Authorization": f"Bearer {served_api.token}"}
    huge = httpx.post(f"{served_api.url}/kickoff", json={"project_id": "p", "brief": "x" * 3_000_000},
                      headers=auth, timeout=30)  # fmt: skip
    assert huge.status_code == 413
    long_brief = httpx.post(f"{served_api.url}/kickoff", json={"project_id": "p", "brief": "x" * 900_000},
                            headers=auth, timeout=30)  # fmt: skip
    assert long_brief.status_code == 422 and len(long_brief.content) < 2_000
    context = {"blob": "y" * 200_000}
    big = httpx.post(f"{served_api.url}/kickoff", json={"project_id": "p", "brief": "b", "context": context},
                     headers=auth, timeout=30)  # fmt: skip
    assert big.status_code == 422, big.text
    [error] = big.json()["detail"]
    assert error["loc"] == ["body", "context"] and "65,536 allowed" in error["msg"]
