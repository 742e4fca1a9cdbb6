"""`boomerang gpu exec` end to end: the command's exit code is the CLI's, evidence is kept."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from boomerang.gpu_telemetry import read_records, telemetry_path
from boomerang.models.gpu_runs import GpuRunRecord
from boomerang.store.queries import Pool, charter_for_run, ledger_for_run
from tests.gpu.conftest import GpuStackFactory
from tests.gpu.worktrees import git_worktree
from tests.test_cli import BOOMERANG, run

PY = sys.executable
SHOW_FILES = "import os, sys; print(sorted(os.listdir('.'))); sys.exit(int(sys.argv[1]))"


async def test_exit_codes_0_1_and_124_pass_through_with_tails_artifacts_and_records(
    dev_env: WorkflowEnvironment, gpu_stack: GpuStackFactory, store_pool: Pool, tmp_path: Path
) -> None:
    repo = git_worktree(tmp_path / "repo")
    async with gpu_stack(dev_env) as s:
        exec_ = (str(BOOMERANG), "gpu", "exec", "--workdir", str(repo), "--task-id", "WB101")
        ok = await run(*exec_, "--", PY, "-c", SHOW_FILES, "0", env=s.env)
        failed = await run(*exec_, "--attempt", "2", "--", PY, "-c", SHOW_FILES, "1", env=s.env)
        slow = await run(
            *exec_,
            "--attempt",
            "3",
            "--timeout",
            "1",
            "--",
            PY,
            "-c",
            "import time; time.sleep(30)",
            env=s.env,
        )
        listed = await run(str(BOOMERANG), "gpu", "runs", "--task-id", "WB101", "--json", env=s.env)

    assert (ok.code, failed.code, slow.code) == (0, 1, 124), (ok.output, failed.output, slow.output)
    # Untracked files reach the run; ignored ones (*.log, data/) do not.
    assert ok.out == "['.gitignore', 'pkg', 'tracked.txt', 'untracked.txt']\n"
    assert "timed out after 1s" in slow.err and "timed out (124)" in slow.err

    records = [GpuRunRecord.model_validate(r) for r in json.loads(listed.out)]
    assert [(r.attempt, r.exit_code, r.timed_out, r.status) for r in records] == [
        (1, 0, False, "completed"), (2, 1, False, "completed"), (3, 124, True, "completed"),
    ]  # fmt: skip
    assert records == read_records(telemetry_path(s.state_dir))
    first = records[0]
    assert first.artifact_uri is not None and first.artifact_uri in ok.err
    assert first.start in ("cold", "warm") and first.run_s is not None and first.queue_s is not None

    # <prefix>/<task_id>/attempt-<nn>/<timestamp>/<run_id>/ in the store, metadata matching the run.
    keys = s.store.list("gpu-runs/WB101/attempt-02/")
    (prefix,) = {k.rsplit("/", 1)[0] for k in keys}
    assert prefix.split("/")[-1] == records[1].run_id
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == [
        "metadata.json", "stderr.log", "stdout.log", "workspace_after.tar.gz",
    ]  # fmt: skip
    metadata = json.loads(s.store.get(f"{prefix}/metadata.json"))
    assert (metadata["run_id"], metadata["task_id"], metadata["attempt"], metadata["exit_code"]) == (
        records[1].run_id, "WB101", 2, 1,
    )  # fmt: skip
    assert metadata["snapshot_sha256"] == records[1].snapshot_sha256
    assert s.store.get(f"{prefix}/stdout.log").decode() == ok.out
    assert (records[1].artifact_uri or "").endswith(prefix + "/")
    after = Path(tmp_path / "after.tar.gz")
    after.write_bytes(s.store.get(f"{prefix}/workspace_after.tar.gz"))
    with tarfile.open(after) as tar:
        assert "untracked.txt" in tar.getnames()

    # Ledger: the attempt, costed; Charter: the exit code, and nothing about money or GPUs.
    ledger = await ledger_for_run(store_pool, first.run_id)
    kinds = [e.kind for e in ledger.entries]
    assert kinds.count("compute_attempt") == 1 and "gpu_run_completed" in kinds
    attempt = next(e for e in ledger.entries if e.kind == "compute_attempt")
    assert attempt.gpu_type == "L4" and (attempt.total_cost or 0) > 0
    charter = await charter_for_run(store_pool, records[1].run_id, "local")
    assert [(c.event, c.message) for c in charter] == [
        ("gpu_run_started", "Command started."), ("gpu_run_completed", "Command exited with code 1."),
    ]  # fmt: skip


async def test_bad_input_is_refused_before_anything_is_dispatched(
    dev_env: WorkflowEnvironment, gpu_stack: GpuStackFactory, tmp_path: Path
) -> None:
    repo = git_worktree(tmp_path / "repo")
    (tmp_path / "empty").mkdir()
    async with gpu_stack(dev_env) as s:
        base = (str(BOOMERANG), "gpu", "exec")
        cases = {
            "no such directory": ("--workdir", str(tmp_path / "missing")),
            "is empty": ("--workdir", str(tmp_path / "empty")),
            "unknown GPU type 'Z9'": ("--workdir", str(repo), "--gpu", "Z9"),
            "timeout_s: Input should be less than or equal to 3600": (
                "--workdir",
                str(repo),
                "--timeout",
                "7200",
            ),
            "not set here: NOT_SET_ANYWHERE": ("--workdir", str(repo), "--env", "NOT_SET_ANYWHERE"),
        }
        results = {why: await run(*base, *args, "--", "true", env=s.env) for why, args in cases.items()}
    for why, ran in results.items():
        assert ran.code == 125 and why in ran.err, (why, ran.output)
    assert read_records(telemetry_path(s.state_dir)) == []  # nothing ran
    assert not (s.state_dir / "artifacts").exists()
