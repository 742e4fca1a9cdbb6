"""With BOOMERANG_LOG_JSON=true every line a process writes is JSON, secrets redacted.

Real processes, real servers: `boomerang migrate` on a fresh database, a worker that
cannot reach Temporal (its traceback), and a worker that starts, serves its probes
(uvicorn's own lines) and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from psycopg.conninfo import make_conninfo
from temporalio.testing import WorkflowEnvironment

from tests.observability.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "hunter2-not-for-logs"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOMERANG_", "DATABASE_URL"))}
    return {**env, "BOOMERANG_LOG_JSON": "true", **extra}


def _json_lines(output: bytes) -> list[dict[str, Any]]:
    lines = [line for line in output.decode().splitlines() if line.strip()]
    assert lines, "the process wrote nothing"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not JSON: {line!r}") from None
    return parsed


async def _run(*argv: str, env: dict[str, str], timeout_s: float = 60) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    return proc.returncode or 0, out


async def test_migrate_writes_json(make_database: Callable[[], Awaitable[str]]) -> None:
    url = make_conninfo(await make_database(), password=PASSWORD)
    code, out = await _run(sys.executable, "-m", "boomerang.cli", "migrate", env=_env(DATABASE_URL=url))
    assert code == 0, out
    lines = _json_lines(out)
    assert [e["migration"] for e in lines if e["event"] == "migration_applied"][:2] == [
        "0001_ledger",
        "0002_charter",
    ]
    assert any(e["event"] == "migrations" and e["applied"] for e in lines)
    assert PASSWORD.encode() not in out


async def test_a_worker_that_cannot_start_writes_its_traceback_as_json(pg_conninfo: str) -> None:
    url = make_conninfo(pg_conninfo, password=PASSWORD)
    env = _env(DATABASE_URL=url, BOOMERANG_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
    code, out = await _run(sys.executable, "worker.py", env=env)
    assert code == 1
    lines = _json_lines(out)
    crash = lines[-1]
    assert crash["level"] == "critical" and crash["event"] == "uncaught exception"
    assert "Traceback" in crash["exception"] and "Connection refused" in crash["exception"]
    assert PASSWORD.encode() not in out


async def test_a_worker_runs_and_stops_in_json(dev_env: WorkflowEnvironment, pg_conninfo: str) -> None:
    port = free_port()
    env = _env(
        DATABASE_URL=make_conninfo(pg_conninfo, password=PASSWORD),
        BOOMERANG_TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        BOOMERANG_TEMPORAL_TASK_QUEUE="tq-json-logs",
        BOOMERANG_WORKER_METRICS_PORT=str(port),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = b""
    try:
        async with asyncio.timeout(60):
            while b"worker started" not in seen:
                line = await proc.stdout.readline()
                assert line, f"the worker exited: {seen.decode()}"
                seen += line
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"http://127.0.0.1:{port}/readyz")
            metrics = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert ready.status_code == 200, ready.text
        assert "temporal_worker_start_total" in metrics.text
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    lines = _json_lines(seen + rest)
    events = [e["event"] for e in lines]
    assert "worker started" in events and events[-1] == "worker stopped"
    # uvicorn (the probe server) logs through the stdlib: JSON too, with its logger's name.
    assert any(e.get("logger", "").startswith("uvicorn") for e in lines)
    assert PASSWORD.encode() not in seen + rest
    assert proc.returncode == 0
