"""A worker that runs GPU command runs, on a fresh task queue, with its state dir in tmp_path."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.gpu_runs import GpuRunActivities
from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.artifacts import ArtifactStore, LocalArtifactStore
from boomerang.client import BoomerangClient
from worker import build_activities
from workflows.gpu_run import GpuRun
from workflows.warm_policy import GpuWarmPolicy


@dataclass(frozen=True)
class GpuStack:
    client: BoomerangClient
    task_queue: str
    state_dir: Path
    store: ArtifactStore
    activities: GpuRunActivities

    @property
    def env(self) -> dict[str, str]:
        """What a `boomerang` subprocess needs to reach this stack."""
        return {
            "BOOMERANG_TEMPORAL_ADDRESS": self.client.temporal.service_client.config.target_host,
            "BOOMERANG_TEMPORAL_TASK_QUEUE": self.task_queue,
            "BOOMERANG_TEMPORAL_NAMESPACE": self.client.temporal.namespace,
            "BOOMERANG_STATE_DIR": str(self.state_dir),
        }


GpuStackFactory = Callable[..., AbstractAsyncContextManager[GpuStack]]


@pytest.fixture
def gpu_stack(backend: LocalBackend, event_store: EventSink, tmp_path: Path) -> GpuStackFactory:
    @asynccontextmanager
    async def start(
        env: WorkflowEnvironment, *, store: ArtifactStore | None = None, **options: Any
    ) -> AsyncIterator[GpuStack]:
        state_dir = tmp_path / "state"
        store = store or LocalArtifactStore(state_dir / "artifacts")
        gpu = GpuRunActivities(store=store, state_dir=state_dir, **options)
        task_queue = f"tq-gpu-{uuid.uuid4().hex}"
        async with Worker(
            env.client,
            task_queue=task_queue,
            workflows=[GpuRun, GpuWarmPolicy],
            activities=[*build_activities(backend, event_store), *gpu.activities],
        ):
            yield GpuStack(
                BoomerangClient(env.client, task_queue=task_queue), task_queue, state_dir, store, gpu
            )

    return start
