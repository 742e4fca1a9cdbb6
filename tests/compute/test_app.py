"""The Modal app: imports offline, deploys what the registry says, replies as data."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from modal_app import functions
from modal_app.functions import call, lookup, registered
from modal_app.specialists import all_specialists
from tests.compute import task


def test_app_imports_without_network_or_credentials() -> None:
    # A fresh interpreter with no Modal token and an unroutable proxy: importing must not dial out.
    env = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "PATH": ""}
    code = "import modal_app.app as a; print(a.app.name)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "boomerang"


def test_every_function_is_deployed_with_its_registered_resources() -> None:
    from modal_app import app

    names = set(registered())
    assert {s.function for s in all_specialists()} <= names
    for name in names:
        fn = lookup(name)
        deployed = getattr(app, name)
        # Modal's spec is private API; it is the only offline view of what will deploy.
        spec = deployed._spec_
        assert (spec.gpus, spec.cpu, spec.memory) == (fn.gpu, fn.cpu, fn.memory_mib), name


def test_the_modal_functions_reply_as_data() -> None:
    from modal_app import app

    ok = app.task_crunch_ang.local(task("data_analysis", "Crunch_Ang", {"columns": {"x": [1, 2, 3]}}))
    assert ok["ok"]["output"]["columns"]["x"]["mean"] == 2.0
    bad = app.task_crunch_ang.local(task("data_analysis", "Crunch_Ang", {"columns": {"x": ["?"]}}))
    assert bad["error"]["type"] == "PayloadError" and bad["error"]["permanent"] is True
    assert "payload.columns.x.0" in bad["error"]["message"]


def test_call_reports_retryable_failures_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_req: object) -> dict[str, object]:
        raise ConnectionError("the network blinked")

    fn = lookup("phase_0_onboarding")
    monkeypatch.setitem(functions._REGISTRY, fn.name, replace(fn, body=broken))
    reply = call(fn.name, {"run_id": "r", "phase": "onboarding", "brief": "b"})
    assert reply["error"]["type"] == "ConnectionError" and reply["error"]["permanent"] is False
    assert "the network blinked" in reply["error"]["traceback"]
