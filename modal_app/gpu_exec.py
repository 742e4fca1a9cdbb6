"""GPU command runs: unpack a worktree snapshot, run one command in it, keep the evidence.

    reply = registry.call("gpu_exec_l4", GpuExecRequest(...).model_dump(mode="json"))
    reply["ok"]["output"]["exit_code"]     # the command's own exit code; 124 on timeout

One compute function per GPU type (`gpu_exec_l4`, `gpu_exec_a10g`, ...): Modal fixes
a function's GPU at deploy time, and the warm policy scales each one on its own. The
body fetches the snapshot (inline, a `file://` path or an `http(s)://` URL such as a
presigned GET), checks its sha256, unpacks it into a temporary directory and runs
the command there (argv, no shell) with only the environment variables the caller
named, plus PATH/HOME/LANG and the GPU's own. It writes `stdout.log`, `stderr.log`,
`metadata.json` and `workspace_after.tar.gz` to the artifact target (a directory, or
presigned PUT URLs) and returns the exit code, the tails and the timings: a command
that fails is a result, not an error.

The command leads its own process group: on timeout the whole group gets SIGTERM,
then SIGKILL after a grace period, and the result is exit code 124. If the process
running this body is killed (the local backend does so on cancel), the kernel kills
the command too (PR_SET_PDEATHSIG on Linux). Local runs take a lock per GPU so that
benchmarks never share a device (on Modal each container has its own GPU).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from modal_app.contracts import FunctionOutput, PermanentError
from modal_app.functions import MINUTES, ComputeFunction

# The GPU types a command can ask for (each is priced in the price table), by function name.
GPU_TYPES = ("T4", "L4", "A10G", "L40S", "A100-40GB", "A100-80GB", "H100", "H200", "B200")
DEFAULT_GPU = "L4"  # the seed's default
MAX_TIMEOUT_S = 60 * MINUTES
# Fetching, unpacking and uploading on top of the command's own timeout.
OVERHEAD_S = 10 * MINUTES
TAIL_BYTES = 8 * 1024
KILL_GRACE_S = 5.0
TIMEOUT_EXIT_CODE = 124
ARTIFACT_NAMES = ("stdout.log", "stderr.log", "metadata.json", "workspace_after.tar.gz")
# Passed through to the command besides the names the caller gave: what a GPU program needs.
BASE_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
)


def function_name(gpu: str) -> str:
    """`A100-40GB` -> `gpu_exec_a100_40gb` (a Python identifier, as Modal needs)."""
    return "gpu_exec_" + gpu.lower().replace("-", "_")


class ArtifactTarget(BaseModel):
    """Where the four artifacts go: a directory this process can write, or PUT URLs by name."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    directory: str | None = None
    put_urls: dict[str, str] = Field(default_factory=dict)


class GpuExecRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str = Field(min_length=1)
    task_id: str = Field(min_length=1)
    attempt: int = Field(default=1, ge=1)
    gpu: str = DEFAULT_GPU
    command: tuple[str, ...] = Field(min_length=1)
    timeout_s: float = Field(gt=0, le=MAX_TIMEOUT_S)
    # Values of the variables the caller named; only the names are ever written down.
    env: dict[str, str] = Field(default_factory=dict)
    snapshot_sha256: str = Field(min_length=64, max_length=64)
    snapshot_inline: str | None = None  # base64 of the .tar.gz
    snapshot_url: str | None = None
    artifacts: ArtifactTarget = ArtifactTarget()
    tail_bytes: int = Field(default=TAIL_BYTES, ge=0, le=1024 * 1024)

    @model_validator(mode="after")
    def _one_source(self) -> GpuExecRequest:
        if (self.snapshot_inline is None) == (self.snapshot_url is None):
            raise ValueError("give the snapshot either inline or by URL, exactly one")
        return self


# -- the snapshot ---------------------------------------------------------------------------------


def _fetch(url: str) -> bytes:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path)).read_bytes()
    if parts.scheme in ("http", "https"):
        response = httpx.get(url, timeout=120, follow_redirects=True)
        response.raise_for_status()
        return response.content
    raise PermanentError(f"snapshot URL scheme {parts.scheme!r} is not supported (file, http, https)")


def _snapshot_bytes(req: GpuExecRequest) -> bytes:
    data = base64.b64decode(req.snapshot_inline) if req.snapshot_inline is not None else None
    data = data if data is not None else _fetch(req.snapshot_url or "")
    digest = hashlib.sha256(data).hexdigest()
    if digest != req.snapshot_sha256:
        raise PermanentError(f"snapshot sha256 mismatch: got {digest}, expected {req.snapshot_sha256}")
    return data


def _unpack(data: bytes, dest: Path) -> int:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        tar.extractall(dest, filter="data")
    return len(members)


# -- running the command --------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: its own process group, killed if this process dies."""
    os.setsid()
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's group, SIGKILL what is left after the grace period."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(KILL_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _command_env(given: dict[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env["PYTHONUNBUFFERED"] = "1"
    return env | given


def _run(req: GpuExecRequest, cwd: Path, stdout: Path, stderr: Path) -> tuple[int, bool]:
    """The command's exit code (124 on timeout; 126/127 as a shell would) and whether it timed out."""
    with stdout.open("wb") as out, stderr.open("wb") as err:
        try:
            proc = subprocess.Popen(
                list(req.command),
                cwd=cwd,
                env=_command_env(req.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError as exc:
            err.write(f"boomerang: command not found: {exc.filename or req.command[0]}\n".encode())
            return 127, False
        except PermissionError as exc:
            err.write(f"boomerang: permission denied: {exc.filename or req.command[0]}\n".encode())
            return 126, False
        try:
            code = proc.wait(req.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            err.flush()
            err.write(f"\nboomerang: timed out after {req.timeout_s:g}s; the command was killed\n".encode())
            return TIMEOUT_EXIT_CODE, True
        except BaseException:
            _kill_group(proc)  # cancelled (Modal raises in the running input): stop the command too
            raise
        # Whatever it left running in the background goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return (128 - code if code < 0 else code), False  # killed by signal N: 128+N, as a shell says


def _tail(path: Path, size: int) -> str:
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - size))
        return f.read().decode("utf-8", "replace")


@contextlib.contextmanager
def _device_lock(runtime: str) -> Iterator[float]:
    """Locally, one run per GPU at a time (benchmarks must not share one); yields the wait."""
    started = time.monotonic()
    if runtime != "local":
        yield 0.0
        return
    device = os.environ.get("CUDA_VISIBLE_DEVICES", "all").replace(",", "_") or "none"
    path = Path(tempfile.gettempdir()) / f"boomerang-gpu-exec-{os.getuid()}-{device}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or this process dies
        yield time.monotonic() - started


# -- artifacts ------------------------------------------------------------------------------------


def _pack_dir(root: Path, out: Path) -> None:
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file() or path.is_symlink():
                tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)


def _deliver(target: ArtifactTarget, files: dict[str, Path]) -> list[str]:
    delivered: list[str] = []
    if target.directory:
        dest = Path(target.directory)
        dest.mkdir(parents=True, exist_ok=True)
        for name, path in files.items():
            if path != dest / name:
                os.replace(path, dest / name)
            delivered.append(name)
    for name, url in target.put_urls.items():
        if name in files and name not in delivered:
            with files[name].open("rb") as f:
                httpx.put(url, content=f.read(), timeout=300).raise_for_status()
            delivered.append(name)
    return delivered


def _device() -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"cuda:{visible}" if visible not in (None, "", "-1") else "local"


def run_command(req: GpuExecRequest) -> FunctionOutput:
    """The body of every `gpu_exec_<gpu>` function (see the module docstring)."""
    runtime = "modal" if os.environ.get("MODAL_IS_REMOTE") == "1" else "local"
    t0 = time.monotonic()
    data = _snapshot_bytes(req)
    with tempfile.TemporaryDirectory(prefix="boomerang-gpu-") as tmp:
        work, logs = Path(tmp) / "work", Path(tmp) / "logs"
        work.mkdir()
        logs.mkdir()
        files = _unpack(data, work)
        fetched = time.monotonic()
        stdout, stderr = logs / "stdout.log", logs / "stderr.log"
        with _device_lock(runtime) as lock_wait_s:
            started_at = datetime.now(UTC)
            ran = time.monotonic()
            exit_code, timed_out = _run(req, work, stdout, stderr)
            run_s = time.monotonic() - ran
        finished_at = datetime.now(UTC)
        _pack_dir(work, logs / "workspace_after.tar.gz")
        output: dict[str, Any] = {
            "exit_code": exit_code,
            "timed_out": timed_out,
            "stdout_tail": _tail(stdout, req.tail_bytes),
            "stderr_tail": _tail(stderr, req.tail_bytes),
            "stdout_bytes": stdout.stat().st_size,
            "stderr_bytes": stderr.stat().st_size,
            "snapshot_files": files,
            "prepare_s": round(fetched - t0, 3),
            "lock_wait_s": round(lock_wait_s, 3),
            "run_s": round(run_s, 3),
            "command_started_at": started_at.isoformat(),
            "command_finished_at": finished_at.isoformat(),
            "runtime": runtime,
            "device": _device(),
        }
        metadata = {
            "run_id": req.run_id,
            "task_id": req.task_id,
            "attempt": req.attempt,
            "gpu": req.gpu,
            "command": list(req.command),
            "env_names": sorted(req.env),
            "timeout_s": req.timeout_s,
            "snapshot_sha256": req.snapshot_sha256,
            **{k: v for k, v in output.items() if not k.endswith("_tail")},
        }
        (logs / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        upload = time.monotonic()
        delivered = _deliver(req.artifacts, {n: logs / n for n in ARTIFACT_NAMES})
        output |= {"artifacts": delivered, "upload_s": round(time.monotonic() - upload, 3)}
    return FunctionOutput(
        output=output,
        summary=f"exit code {exit_code}" + (" (timed out)" if timed_out else ""),
        device=output["device"],
    )


def gpu_exec_functions() -> dict[str, ComputeFunction[GpuExecRequest]]:
    """One compute function per GPU type, each deployed with (and priced at) its GPU."""
    return {
        function_name(gpu): ComputeFunction(
            function_name(gpu),
            run_command,
            MAX_TIMEOUT_S + OVERHEAD_S,
            gpu=gpu,
            request_model=GpuExecRequest,
            cpu=4.0,
            memory_mib=16 * 1024,
        )
        for gpu in GPU_TYPES
    }
