"""The warm policy on the time-skipping server, applied to Modal's autoscaler over the wire.

Recorded cold-start figures promote the function to hot (`min_containers=1`,
`scaledown_window=1200`); 30 minutes without a run, skipped in well under a second,
demote it to hybrid (`0`, `600`). Each change is a Ledger row with its reason and cost.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.gpu_runs import GpuRunActivities
from activities.records import EventSink, RecordActivities
from boomerang.artifacts import LocalArtifactStore
from boomerang.models.gpu_runs import WARM_POLICY_WORKFLOW, PolicyObservation, WarmMode, policy_workflow_id
from boomerang.store.queries import Pool
from boomerang.warm_policy import PolicyState, WarmPolicyInput
from tests.helpers import wait_until
from tests.modal_servicer.servicer import ModalServicer
from workflows.warm_policy import GpuWarmPolicy

FUNCTION = "gpu_exec_t4"
COLD_STARTS_S = (52.0, 47.5, 61.2)  # measured cold starts of a CUDA image, as the policy sees them


async def _ledger(pool: Pool, run_id: str) -> list[tuple[str, dict[str, object]]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT status, details FROM ledger"
            " WHERE run_id = %s AND kind = 'warm_policy_changed' ORDER BY seq",
            (run_id,),
        )
        return [(row[0], row[1]) for row in await cur.fetchall()]


async def test_cold_starts_promote_idle_demotes_applied_on_modal(
    skip_env: WorkflowEnvironment,
    modal_service: ModalServicer,
    event_store: EventSink,
    store_pool: Pool,
    tmp_path: Path,
) -> None:
    gpu = GpuRunActivities(
        store=LocalArtifactStore(tmp_path / "artifacts"), state_dir=tmp_path, backend="modal",
        modal_app_name=modal_service.app_name,
    )  # fmt: skip
    task_queue = f"tq-policy-{uuid.uuid4().hex}"
    wid = policy_workflow_id(FUNCTION)
    async with Worker(
        skip_env.client,
        task_queue=task_queue,
        workflows=[GpuWarmPolicy],
        activities=[gpu.apply_warm_policy, RecordActivities(event_store).record_events],
    ):
        now = await skip_env.get_current_time()
        for i, cold_s in enumerate(COLD_STARTS_S):
            obs = PolicyObservation(
                run_id=f"run-{i}", at=now + timedelta(seconds=i), cold_start=True, start_s=cold_s
            )
            await skip_env.client.start_workflow(
                WARM_POLICY_WORKFLOW, WarmPolicyInput(function=FUNCTION, gpu="T4"), id=wid,
                task_queue=task_queue, start_signal="observe", start_signal_args=[obs],
            )  # fmt: skip
        handle = skip_env.client.get_workflow_handle(wid)

        async def hot() -> PolicyState | None:
            state = PolicyState.model_validate(await handle.query("policy", result_type=PolicyState))
            return state if state.mode is WarmMode.HOT else None

        promoted = await wait_until(hot, what="the policy to go hot")
        await modal_service.until(lambda: modal_service.autoscaler.get(FUNCTION, None) is not None
                                  and modal_service.autoscaler[FUNCTION].min_containers == 1)  # fmt: skip
        hot_settings = (modal_service.autoscaler[FUNCTION].min_containers,
                        modal_service.autoscaler[FUNCTION].scaledown_window)  # fmt: skip

        await skip_env.sleep(timedelta(minutes=31))  # idle: skipped, not waited

        async def demoted() -> PolicyState | None:
            state = PolicyState.model_validate(await handle.query("policy", result_type=PolicyState))
            return state if state.mode is WarmMode.HYBRID else None

        back = await wait_until(demoted, what="the policy to demote")
        rows = await wait_until(
            lambda: _rows_when(store_pool, wid, 3), what="three warm_policy_changed Ledger rows"
        )

    assert promoted.cold_starts == COLD_STARTS_S
    assert hot_settings == (1, 1200)
    settings = modal_service.autoscaler[FUNCTION]
    assert (settings.min_containers, settings.scaledown_window) == (0, 600)
    assert back.reason == "idle for 30 minutes"
    assert [status for status, _ in rows] == ["hybrid", "hot", "hybrid"]
    started, promotion, demotion = (details for _, details in rows)
    assert started["reason"] == "policy started"
    assert promotion["reason"] == "median of the last 3 cold starts 52s exceeds 45s"
    assert promotion["cold_starts_s"] == list(COLD_STARTS_S)
    assert promotion["applied"] is True and "min_containers=1" in str(promotion["applied_detail"])
    # A warm T4 bills while idle: 0.000164 $/s x 3600 s = $0.5904 an hour.
    assert promotion["idle_usd_per_hour"] == "0.5904"
    assert demotion["idle_usd_per_hour"] == "0" and demotion["reason"] == "idle for 30 minutes"


async def _rows_when(pool: Pool, run_id: str, n: int) -> list[tuple[str, dict[str, object]]] | None:
    rows = await _ledger(pool, run_id)
    return rows if len(rows) >= n else None
