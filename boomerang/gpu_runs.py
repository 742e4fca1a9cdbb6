"""GPU command runs from the front doors: check, snapshot, start, wait (`BoomerangClient.gpu_exec`).

    inp = prepare_gpu_run(["pytest", "-q"], workdir=Path("."), gpu="L4", timeout_s=600,
                          task_id="WB101", env_names=["HF_TOKEN"], store=store)
    outcome = await client.gpu_exec(...)      # the same, then start the run and wait for it

Everything that can be refused is refused here, before anything is dispatched: an
unknown GPU, a timeout out of range, a bad task id or variable name, a missing
directory, an empty snapshot, a snapshot over the size limit. A snapshot over the
inline limit (256 KiB compressed) is put in the artifact store under its sha256 and
the run carries only its key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import secrets
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import ValidationError
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError

from boomerang.artifacts import ArtifactStore
from boomerang.constants import SA_TENANT
from boomerang.errors import BoomerangError
from boomerang.models.gpu_runs import (
    ARTIFACT_PREFIX,
    GPU_RUN_WORKFLOW,
    INLINE_SNAPSHOT_LIMIT,
    GpuRunInput,
    GpuRunOutcome,
    HotMode,
    SnapshotRef,
)
from boomerang.snapshots import DEFAULT_MAX_BYTES, pack_snapshot

DEFAULT_TASK_ID = "adhoc"


class GpuRunInputError(BoomerangError, ValueError):
    """The run was refused before dispatch; the message says which input and why."""


class GpuRunFailedError(BoomerangError):
    """Boomerang could not run the command (not: the command failed, which is an exit code)."""


def new_gpu_run_id(task_id: str, attempt: int) -> str:
    return f"gpu-{task_id[:60]}-a{attempt:02d}-{secrets.token_hex(4)}"


def _env_values(names: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    missing = [n for n in names if n not in environ]
    if missing:
        raise GpuRunInputError(f"--env names variables that are not set here: {', '.join(missing)}")
    return {n: environ[n] for n in names}


def _validated(**fields: object) -> GpuRunInput:
    try:
        return GpuRunInput.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise GpuRunInputError(f"GPU run refused: {problems}") from None


def prepare_gpu_run(
    command: Sequence[str],
    *,
    workdir: Path,
    store: ArtifactStore | None,
    gpu: str = "L4",
    timeout_s: float = 600,
    task_id: str = DEFAULT_TASK_ID,
    attempt: int = 1,
    env_names: Sequence[str] = (),
    hot_mode: HotMode = HotMode.AUTO,
    tenant: str = "local",
    max_snapshot_bytes: int = DEFAULT_MAX_BYTES,
    environ: Mapping[str, str] | None = None,
) -> GpuRunInput:
    """Check the inputs, pack the snapshot (into the store when large): a run input, or an error."""
    fields = {
        "tenant": tenant, "task_id": task_id, "attempt": attempt, "gpu": gpu, "command": tuple(command),
        "timeout_s": timeout_s, "hot_mode": hot_mode,
        "env": _env_values(env_names, os.environ if environ is None else environ),
    }  # fmt: skip
    placeholder = SnapshotRef(sha256="0" * 64, size=1, files=1, inline="")
    _validated(**fields, snapshot=placeholder)  # refuse bad options before packing anything
    snap = pack_snapshot(workdir, max_bytes=max_snapshot_bytes)
    return _with_snapshot(fields, snap.data, files=snap.files, store=store)


def input_from_archive(
    archive: bytes,
    *,
    store: ArtifactStore | None,
    max_snapshot_bytes: int = DEFAULT_MAX_BYTES,
    **fields: object,
) -> GpuRunInput:
    """A run input from a snapshot packed elsewhere (`pack_snapshot`'s .tar.gz), e.g. sent over HTTP."""
    if not archive:
        raise GpuRunInputError("the snapshot is empty")
    if len(archive) > max_snapshot_bytes:
        raise GpuRunInputError(
            f"the snapshot is over its limit: {len(archive):,} > {max_snapshot_bytes:,} bytes"
        )
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            files = sum(1 for m in tar.getmembers() if not m.isdir())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise GpuRunInputError(f"the snapshot is not a .tar.gz: {exc}") from None
    if files == 0:
        raise GpuRunInputError("the snapshot is empty: it holds no file")
    return _with_snapshot(fields, archive, files=files, store=store)


def _with_snapshot(
    fields: dict[str, object], data: bytes, *, files: int, store: ArtifactStore | None
) -> GpuRunInput:
    ref = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "files": files}
    if len(data) <= INLINE_SNAPSHOT_LIMIT:
        return _validated(**fields, snapshot=SnapshotRef(**ref, inline=base64.b64encode(data).decode()))
    if store is None:
        raise GpuRunInputError(
            f"the snapshot is {len(data):,} bytes, over the {INLINE_SNAPSHOT_LIMIT:,}-byte inline limit, "
            "and no artifact store was given to carry it"
        )
    key = f"{ARTIFACT_PREFIX}/snapshots/{ref['sha256']}.tar.gz"
    store.put(key, data)
    return _validated(**fields, snapshot=SnapshotRef(**ref, key=key))


async def start_gpu_run(
    client: Client, inp: GpuRunInput, *, task_queue: str, run_id: str | None = None
) -> str:
    run_id = run_id or new_gpu_run_id(inp.task_id, inp.attempt)
    await client.start_workflow(
        GPU_RUN_WORKFLOW,
        inp,
        id=run_id,
        task_queue=task_queue,
        # The API finds a tenant's runs by it (as for pipelines and tasks).
        search_attributes=TypedSearchAttributes([SearchAttributePair(SA_TENANT, inp.tenant)]),
    )
    return run_id


async def gpu_run_result(client: Client, run_id: str) -> GpuRunOutcome:
    try:
        handle = client.get_workflow_handle(run_id, result_type=GpuRunOutcome)
        return GpuRunOutcome.model_validate(await handle.result())
    except WorkflowFailureError as exc:
        cause = exc.cause
        while isinstance(cause, ApplicationError) and cause.cause is not None:
            cause = cause.cause
        raise GpuRunFailedError(f"GPU run {run_id} failed: {cause or exc}") from None
