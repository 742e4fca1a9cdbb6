"""GPU command runs (`boomerang gpu exec`) and their warm policy, as they cross boundaries."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from boomerang.money import Usd
from modal_app.gpu_exec import DEFAULT_GPU, GPU_TYPES, MAX_TIMEOUT_S, ArtifactTarget

# Snapshots up to this size (compressed) travel inside the run's input; larger ones go
# through the artifact store, so histories never carry large payloads.
INLINE_SNAPSHOT_LIMIT = 256 * 1024
ARTIFACT_PREFIX = "gpu-runs"
GPU_RUN_WORKFLOW = "GpuRun"
WARM_POLICY_WORKFLOW = "GpuWarmPolicy"


def policy_workflow_id(function: str) -> str:
    """The one `GpuWarmPolicy` workflow of a GPU function."""
    return f"gpu-warm-policy-{function}"


class HotMode(StrEnum):
    """`--hot-mode`: `on` makes the function hot now, `off` takes it back to its base mode
    (and the run does not count towards a promotion), `auto` lets the policy decide."""

    ON = "on"
    OFF = "off"
    AUTO = "auto"


class WarmMode(StrEnum):
    COLD = "cold"
    HYBRID = "hybrid"
    HOT = "hot"


class SnapshotRef(BaseModel):
    """A packed worktree: inline (base64, small ones) or a key in the artifact store."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sha256: str = Field(min_length=64, max_length=64)
    size: int = Field(ge=1)
    files: int = Field(ge=1)
    inline: str | None = None
    key: str | None = None


class GpuRunInput(BaseModel):
    """Input of the `GpuRun` workflow; new fields must have defaults."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant: str = Field(default="local", min_length=1, max_length=200)
    task_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    attempt: int = Field(default=1, ge=1, le=99)
    gpu: str = DEFAULT_GPU
    command: tuple[str, ...] = Field(min_length=1)
    timeout_s: float = Field(default=600, ge=1, le=MAX_TIMEOUT_S)
    # Values of the variables named with --env: sent to the command, never recorded.
    env: dict[str, str] = Field(default_factory=dict)
    snapshot: SnapshotRef
    hot_mode: HotMode = HotMode.AUTO
    max_attempts: int = Field(default=3, ge=1, le=10)
    heartbeat_timeout: timedelta = Field(default=timedelta(seconds=30), ge=timedelta(seconds=10))

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, gpu: str) -> str:
        if gpu.upper() in GPU_TYPES:
            return gpu.upper()
        raise ValueError(f"unknown GPU type {gpu!r}; supported: {', '.join(GPU_TYPES)}")

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        bad = [n for n in env if not n.isidentifier()]
        if bad:
            raise ValueError(f"environment variable names must be identifiers: {bad}")
        return env


class PrepareGpuRunInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    task_id: str
    attempt: int
    started_at: datetime
    snapshot: SnapshotRef


class PreparedGpuRun(BaseModel):
    """Where the run's artifacts go and where its snapshot comes from."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    key_prefix: str  # <prefix>/<task_id>/attempt-<nn>/<timestamp>/<run_id>/
    artifact_uri: str
    target: ArtifactTarget
    snapshot_url: str | None = None
    # Written by the compute function, moved into the store by `collect` (local backend).
    spool: str | None = None


class GpuRunRecord(BaseModel):
    """One telemetry line (`<state dir>/gpu_runs.jsonl`): one run, as it ended."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    task_id: str
    attempt: int
    tenant: str
    gpu: str
    function: str
    status: Literal["completed", "failed", "cancelled"]
    start: Literal["cold", "warm"] | None = None
    queue_s: float | None = None
    start_s: float | None = None  # fetching and unpacking the snapshot, waiting for the device
    run_s: float | None = None
    exit_code: int | None = None
    timed_out: bool = False
    cost_usd: Usd = Decimal(0)
    artifact_uri: str | None = None
    snapshot_sha256: str
    recorded_at: datetime
    error: str | None = None


class CollectGpuRunInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    prepared: PreparedGpuRun
    record: GpuRunRecord


class GpuRunOutcome(BaseModel):
    """Result of the `GpuRun` workflow: what the command did, where the evidence is."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    task_id: str
    attempt: int
    gpu: str
    status: Literal["completed", "failed", "cancelled"]
    exit_code: int | None = None
    timed_out: bool = False
    stdout_tail: str = ""
    stderr_tail: str = ""
    artifact_uri: str | None = None
    cost_usd: Usd = Decimal(0)
    start: Literal["cold", "warm"] | None = None
    queue_s: float | None = None
    run_s: float | None = None
    error: str | None = None


class PolicyObservation(BaseModel):
    """What the warm policy learns from one run (the `observe` signal)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    at: datetime
    cold_start: bool = False
    # Dispatch to the command's start, when the container was cold: the cold-start figure.
    start_s: float | None = None
    hot_mode: HotMode = HotMode.AUTO


class ReportGpuRunInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    function: str
    gpu: str
    observation: PolicyObservation


class ApplyScalingInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    function: str
    gpu: str = ""
    mode: WarmMode
    min_containers: int = Field(ge=0)
    scaledown_window_s: int = Field(ge=2, le=3600)


class AppliedScaling(BaseModel):
    model_config = ConfigDict(frozen=True)

    applied: bool
    detail: str
    # The mode's cost consequence at the price table's GPU rate: billed with no run at all,
    # and at most per run for the container idling until it scales down.
    idle_usd_per_hour: Usd = Decimal(0)
    tail_usd_per_run: Usd = Decimal(0)
