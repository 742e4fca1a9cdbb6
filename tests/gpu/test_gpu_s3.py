"""A GPU run with its artifact store on S3 (moto's server on loopback), on the local backend.

The snapshot is over the inline limit, so the client puts it in the bucket and the
compute function fetches it by presigned URL; the four artifacts land in the bucket
under the documented path, as another S3 client lists them, with matching metadata.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from boomerang.artifacts import S3ArtifactStore
from boomerang.gpu_runs import prepare_gpu_run
from boomerang.gpu_telemetry import read_records, telemetry_path
from boomerang.models.gpu_runs import INLINE_SNAPSHOT_LIMIT
from tests.fixtures.s3 import S3Bucket
from tests.gpu.conftest import GpuStackFactory
from tests.gpu.evidence import run_artifacts
from tests.gpu.worktrees import git_worktree

PREFIX = "boomerang"
# Reads the large file, leaves a file behind, writes to both streams, and fails with 5.
COMMAND = (
    "import os, sys; print(os.path.getsize('weights.bin')); open('made.txt', 'w').write('made');"
    " print('to stderr', file=sys.stderr); raise SystemExit(5)"
)


async def test_a_run_with_an_s3_store_keeps_snapshot_and_artifacts_in_the_bucket(
    dev_env: WorkflowEnvironment, gpu_stack: GpuStackFactory, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    repo = git_worktree(tmp_path / "repo")
    weights = os.urandom(INLINE_SNAPSHOT_LIMIT + 64 * 1024)  # random: gzip cannot bring it under
    (repo / "weights.bin").write_bytes(weights)
    store = S3ArtifactStore(s3_bucket.name, prefix=PREFIX, endpoint=s3_bucket.endpoint)
    inp = prepare_gpu_run([sys.executable, "-c", COMMAND], workdir=repo, store=store, task_id="s3-run")
    assert inp.snapshot.inline is None and inp.snapshot.key is not None
    async with gpu_stack(dev_env, store=store) as s:
        outcome = await s.client.gpu_run_result(await s.client.start_gpu_run(inp))

    assert (outcome.status, outcome.exit_code) == ("completed", 5)
    assert (outcome.stdout_tail, outcome.stderr_tail) == (f"{len(weights)}\n", "to stderr\n")
    # The snapshot travelled through the bucket, under its own sha256.
    (snapshot_key,) = s3_bucket.keys(f"{PREFIX}/gpu-runs/snapshots/")
    assert snapshot_key == f"{PREFIX}/{inp.snapshot.key}"
    assert hashlib.sha256(s3_bucket.get(snapshot_key)).hexdigest() == inp.snapshot.sha256
    assert inp.snapshot.key.endswith(f"/{inp.snapshot.sha256}.tar.gz")

    run = run_artifacts(s3_bucket, PREFIX, outcome)
    assert run.files["stdout.log"] == f"{len(weights)}\n".encode()
    assert run.files["stderr.log"] == b"to stderr\n"
    meta = run.metadata
    assert {k: meta[k] for k in ("run_id", "task_id", "attempt", "gpu", "exit_code", "timed_out")} == {
        "run_id": outcome.run_id, "task_id": "s3-run", "attempt": 1, "gpu": "L4", "exit_code": 5,
        "timed_out": False,
    }  # fmt: skip
    assert (meta["command"], meta["snapshot_sha256"]) == (
        [sys.executable, "-c", COMMAND],
        inp.snapshot.sha256,
    )
    assert meta["stdout_bytes"] == len(run.files["stdout.log"])
    workspace = run.workspace()
    assert (workspace["weights.bin"], workspace["made.txt"]) == (weights, b"made")
    assert "ignored.log" not in workspace and "untracked.txt" in workspace
    # The telemetry line points at the same place; the local spool is gone.
    (record,) = read_records(telemetry_path(s.state_dir))
    assert (record.run_id, record.exit_code, record.artifact_uri) == (outcome.run_id, 5, outcome.artifact_uri)
    assert not any((s.state_dir / "gpu-spool").iterdir())
