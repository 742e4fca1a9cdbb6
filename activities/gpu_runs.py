"""The side effects of a GPU command run and of its warm policy.

    gpu = GpuRunActivities(store=artifact_store_from_settings(settings), state_dir=settings.state_dir,
                           backend="local", modal_app_name="boomerang")
    Worker(..., activities=[*gpu.activities, ...])

- `prepare_gpu_run`: where the run's artifacts go (`<prefix>/<task_id>/attempt-<nn>/<timestamp>/<run_id>/`)
  and where its snapshot comes from. Locally the compute function writes into a spool
  directory that `collect_gpu_run` moves into the store (any store: directory or S3);
  on Modal it PUTs to presigned URLs of an S3 store (a local directory store is out
  of a container's reach: the run's URI is then `unpersisted://<run_id>`).
- `collect_gpu_run`: the spool into the store, and the telemetry line.
- `report_gpu_run`: signal-with-start of the function's `GpuWarmPolicy` workflow.
- `apply_warm_policy`: the mode on Modal's autoscaler (`min_containers`, `scaledown_window`).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from boomerang.artifacts import ArtifactStore, S3ArtifactStore
from boomerang.constants import TASK_QUEUE
from boomerang.gpu_telemetry import append_record, telemetry_path
from boomerang.models.gpu_runs import (
    ARTIFACT_PREFIX,
    WARM_POLICY_WORKFLOW,
    AppliedScaling,
    ApplyScalingInput,
    CollectGpuRunInput,
    GpuRunRecord,
    PreparedGpuRun,
    PrepareGpuRunInput,
    ReportGpuRunInput,
    policy_workflow_id,
)
from boomerang.pricing import PriceTable, load_price_table
from boomerang.warm_policy import WarmPolicyInput
from modal_app.gpu_exec import ARTIFACT_NAMES, ArtifactTarget

OBSERVE_SIGNAL = "observe"
PUT_URL_EXPIRY = timedelta(hours=2)


def artifact_prefix(inp: PrepareGpuRunInput) -> str:
    stamp = inp.started_at.strftime("%Y%m%dT%H%M%SZ")
    return f"{ARTIFACT_PREFIX}/{inp.task_id}/attempt-{inp.attempt:02d}/{stamp}/{inp.run_id}/"


def snapshot_key(sha256: str) -> str:
    return f"{ARTIFACT_PREFIX}/snapshots/{sha256}.tar.gz"


def _uri(store: ArtifactStore, key_prefix: str) -> str:
    uri: Callable[[str], str] = getattr(store, "uri", store.url)  # s3://... rather than a signed URL
    return uri(key_prefix.rstrip("/")) + "/"


class GpuRunActivities:
    def __init__(
        self,
        *,
        store: ArtifactStore,
        state_dir: Path,
        backend: str = "local",
        modal_app_name: str = "boomerang",
        autoscaler: Callable[[str, str, int, int], Any] | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self._store = store
        self._state_dir = state_dir
        self._remote = backend == "modal"
        self._app = modal_app_name
        # (app, function, min_containers, scaledown_window) -> awaitable; Modal's SDK by default.
        self._autoscaler = autoscaler
        self._prices = prices or load_price_table(env={})

    @property
    def activities(self) -> list[Callable[..., Any]]:
        return [self.prepare_gpu_run, self.collect_gpu_run, self.report_gpu_run, self.apply_warm_policy]

    @property
    def telemetry(self) -> Path:
        return telemetry_path(self._state_dir)

    @activity.defn(name="prepare_gpu_run")
    async def prepare_gpu_run(self, inp: PrepareGpuRunInput) -> PreparedGpuRun:
        prefix = artifact_prefix(inp)
        snapshot_url = None
        if inp.snapshot.key is not None:
            if self._remote and not isinstance(self._store, S3ArtifactStore):
                raise ApplicationError(
                    "a snapshot over the inline limit must reach Modal through an s3:// artifact store "
                    "(BOOMERANG_ARTIFACTS_URL); this worker's store is a local directory",
                    type="SnapshotUnreachable",
                    non_retryable=True,
                )
            snapshot_url = await asyncio.to_thread(self._store.url, inp.snapshot.key)
        if not self._remote:
            spool = self._state_dir / "gpu-spool" / f"{inp.run_id}-attempt-{inp.attempt:02d}"
            return PreparedGpuRun(
                key_prefix=prefix,
                artifact_uri=_uri(self._store, prefix),
                snapshot_url=snapshot_url,
                target=ArtifactTarget(directory=str(spool.resolve())),
                spool=str(spool.resolve()),
            )
        if isinstance(self._store, S3ArtifactStore):
            urls = {
                name: await asyncio.to_thread(_put_url, self._store, prefix + name) for name in ARTIFACT_NAMES
            }
            return PreparedGpuRun(
                key_prefix=prefix,
                artifact_uri=_uri(self._store, prefix),
                snapshot_url=snapshot_url,
                target=ArtifactTarget(put_urls=urls),
            )
        return PreparedGpuRun(
            key_prefix=prefix,
            artifact_uri=f"unpersisted://{inp.run_id}",
            snapshot_url=snapshot_url,
            target=ArtifactTarget(),
        )

    @activity.defn(name="collect_gpu_run")
    async def collect_gpu_run(self, inp: CollectGpuRunInput) -> GpuRunRecord:
        spool = Path(inp.prepared.spool) if inp.prepared.spool else None
        if spool is not None and spool.is_dir():
            for path in sorted(spool.iterdir()):
                await asyncio.to_thread(self._store.put, inp.prepared.key_prefix + path.name, path)
            shutil.rmtree(spool, ignore_errors=True)
        await asyncio.to_thread(append_record, self.telemetry, inp.record)
        return inp.record

    @activity.defn(name="report_gpu_run")
    async def report_gpu_run(self, inp: ReportGpuRunInput) -> None:
        """Tell the function's warm policy about a run, starting the policy if it is not running."""
        await activity.client().start_workflow(
            WARM_POLICY_WORKFLOW,
            WarmPolicyInput(function=inp.function, gpu=inp.gpu),
            id=policy_workflow_id(inp.function),
            task_queue=activity.info().task_queue or TASK_QUEUE,
            start_signal=OBSERVE_SIGNAL,
            start_signal_args=[inp.observation],
        )

    @activity.defn(name="apply_warm_policy")
    async def apply_warm_policy(self, inp: ApplyScalingInput) -> AppliedScaling:
        what = f"min_containers={inp.min_containers}, scaledown_window={inp.scaledown_window_s}s"
        rate = self._prices.gpu_rate(inp.gpu) if inp.gpu else Decimal(0)
        costs = {
            "idle_usd_per_hour": inp.min_containers * rate * 3600,
            "tail_usd_per_run": inp.scaledown_window_s * rate,
        }
        if not self._remote and self._autoscaler is None:
            return AppliedScaling(applied=False, detail=f"local backend: nothing to scale ({what})", **costs)
        scale = self._autoscaler or _modal_autoscaler
        await scale(self._app, inp.function, inp.min_containers, inp.scaledown_window_s)
        return AppliedScaling(applied=True, detail=f"{self._app}.{inp.function}: {what}", **costs)


async def _modal_autoscaler(app: str, function: str, min_containers: int, scaledown_window_s: int) -> None:
    import modal  # here: a local-only worker never pays for importing it

    fn = modal.Function.from_name(app, function)
    await fn.autoscaler.update.aio(min_containers=min_containers, scaledown_window=scaledown_window_s)


def _put_url(store: S3ArtifactStore, key: str) -> str:
    import obstore

    # The store signs GETs only; a container uploads with a PUT signed the same way.
    return str(obstore.sign(store._store, "PUT", key, PUT_URL_EXPIRY))
