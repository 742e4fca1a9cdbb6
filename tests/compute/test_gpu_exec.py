"""The `gpu_exec_<gpu>` body: the command's exit code, tails and artifacts, a timeout as 124."""

from __future__ import annotations

import base64
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from boomerang.pricing import load_price_table
from boomerang.snapshots import pack_snapshot
from modal_app.contracts import PermanentError
from modal_app.gpu_exec import GPU_TYPES, GpuExecRequest, function_name, run_command
from modal_app.registry import builtin_registry
from tests.gpu.worktrees import git_worktree

PY = sys.executable


@pytest.fixture
def request_for(tmp_path: Path) -> Any:
    snap = pack_snapshot(git_worktree(tmp_path / "repo"))

    def make(*command: str, timeout_s: float = 30, **fields: Any) -> GpuExecRequest:
        return GpuExecRequest(
            run_id="run-1", task_id="WB101", command=command, timeout_s=timeout_s,
            snapshot_sha256=snap.sha256, snapshot_inline=base64.b64encode(snap.data).decode(),
            artifacts={"directory": str(tmp_path / "out")}, **fields,
        )  # fmt: skip

    return make


def test_exit_code_tails_and_artifacts_come_back(request_for: Any, tmp_path: Path) -> None:
    code = (
        "import sys; print(open('untracked.txt').read().strip()); print('oops', file=sys.stderr); sys.exit(3)"
    )
    out: dict[str, Any] = run_command(request_for(PY, "-c", code, tail_bytes=6)).output
    assert (out["exit_code"], out["timed_out"]) == (3, False)
    assert out["stdout_tail"] == "acked\n" and out["stderr_tail"] == "oops\n"  # the last 6 bytes
    assert out["stdout_bytes"] == len("untracked\n")
    produced = tmp_path / "out"
    assert sorted(p.name for p in produced.iterdir()) == sorted(out["artifacts"])
    assert (produced / "stdout.log").read_text() == "untracked\n"
    metadata = json.loads((produced / "metadata.json").read_text())
    assert (metadata["task_id"], metadata["exit_code"], metadata["gpu"]) == ("WB101", 3, "L4")
    with tarfile.open(produced / "workspace_after.tar.gz") as tar:
        assert "tracked.txt" in tar.getnames() and "ignored.log" not in tar.getnames()


def test_a_command_past_its_timeout_is_killed_with_its_children_and_exits_124(request_for: Any) -> None:
    code = (
        "import subprocess, time; subprocess.Popen(['sleep', '60']); "
        "print('started', flush=True); time.sleep(60)"
    )
    out: dict[str, Any] = run_command(request_for(PY, "-c", code, timeout_s=1)).output
    assert (out["exit_code"], out["timed_out"]) == (124, True)
    assert out["stdout_tail"] == "started\n"
    assert "timed out after 1s" in out["stderr_tail"]
    assert float(str(out["run_s"])) < 10


def test_only_named_variables_reach_the_command_and_values_are_not_written(
    request_for: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_SECRET", "do-not-pass")
    code = "import os; print(os.environ.get('WORKER_SECRET'), os.environ.get('HF_TOKEN'))"
    out: dict[str, Any] = run_command(request_for(PY, "-c", code, env={"HF_TOKEN": "hf-value"})).output
    assert out["stdout_tail"] == "None hf-value\n"
    metadata = (tmp_path / "out" / "metadata.json").read_text()
    assert '"HF_TOKEN"' in metadata and "hf-value" not in metadata


def test_a_missing_command_is_127_and_a_wrong_snapshot_is_permanent(request_for: Any) -> None:
    assert run_command(request_for("no-such-command-xyz")).output["exit_code"] == 127
    bad = request_for("true").model_copy(update={"snapshot_sha256": "0" * 64})
    with pytest.raises(PermanentError, match="sha256 mismatch"):
        run_command(bad)


def test_one_function_per_gpu_type_each_priced() -> None:
    registry, prices = builtin_registry(), load_price_table(env={})
    for gpu in GPU_TYPES:
        fn = registry.lookup(function_name(gpu))
        assert fn.gpu == gpu and prices.gpu_rate(gpu) > 0
    assert function_name("A100-80GB") == "gpu_exec_a100_80gb"
