"""`GpuWarmPolicy`: the durable warm policy of one GPU function (id `gpu-warm-policy-<function>`).

Started (or signalled) by each `GpuRun` with signal-with-start, so there is exactly
one per function however many workers run. It folds each run (`observe` signal) into
the pure state machine of `boomerang.warm_policy`, waits on a durable timer for the
idle demotion, applies each change to Modal's autoscaler through an activity and
records it in the Ledger (reason, scaling, what idling now costs). The `policy`
query shows the state; the history is renewed (continue-as-new) every few hundred runs.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.gpu_runs import GpuRunActivities
    from boomerang.models.events import EventKind
    from boomerang.models.gpu_runs import WARM_POLICY_WORKFLOW, ApplyScalingInput, PolicyObservation
    from boomerang.warm_policy import (
        PolicyChange,
        PolicyState,
        WarmPolicyInput,
        idle_check,
        idle_deadline,
        observe,
        scaling,
    )
    from workflows.recording import EventLog

POLICY_QUERY = "policy"
OBSERVE_SIGNAL = "observe"
# Runs folded into one history before it is renewed: keeps the history small.
RUNS_PER_HISTORY = 500
OPERATOR_TENANT = "boomerang"


@workflow.defn(name=WARM_POLICY_WORKFLOW)
class GpuWarmPolicy:
    @workflow.init
    def __init__(self, inp: WarmPolicyInput) -> None:
        self._state = inp.state or PolicyState(function=inp.function, mode=inp.config.base_mode)
        self._inbox: list[PolicyObservation] = []
        self._changes: list[PolicyChange] = []

    @workflow.signal(name=OBSERVE_SIGNAL)
    def observe(self, obs: PolicyObservation) -> None:
        self._inbox.append(obs)

    @workflow.query(name=POLICY_QUERY)
    def policy(self) -> PolicyState:
        return self._state

    @workflow.run
    async def run(self, inp: WarmPolicyInput) -> None:
        config = inp.config
        wid = workflow.info().workflow_id
        events = EventLog(run_id=wid, tenant=OPERATOR_TENANT, key_prefix=f"{wid}/g{inp.generation:04d}")
        writer = events.start()
        try:
            if inp.state is None:  # a new policy: the deployed settings become the base mode's
                await self._apply(
                    events,
                    inp,
                    PolicyChange(
                        function=inp.function,
                        from_mode=config.base_mode,
                        to_mode=config.base_mode,
                        reason="policy started",
                        at=workflow.now(),
                        min_containers=scaling(config.base_mode, config).min_containers,
                        scaledown_window_s=scaling(config.base_mode, config).scaledown_window_s,
                    ),
                )
            seen = 0
            while seen < RUNS_PER_HISTORY or self._inbox:
                deadline = idle_deadline(self._state, config)
                timeout = None if deadline is None else max(deadline - workflow.now(), timedelta(0))
                try:
                    await workflow.wait_condition(lambda: bool(self._inbox), timeout=timeout)
                except TimeoutError:
                    self._state, change = idle_check(self._state, workflow.now(), config)
                    if change is not None:
                        await self._apply(events, inp, change)
                    continue
                while self._inbox:
                    obs = self._inbox.pop(0)
                    seen += 1
                    self._state, change = observe(self._state, obs, config)
                    if change is not None:
                        await self._apply(events, inp, change)
            await events.flush()
        finally:
            writer.cancel()
        workflow.continue_as_new(
            inp.model_copy(update={"state": self._state, "generation": inp.generation + 1})
        )

    async def _apply(self, events: EventLog, inp: WarmPolicyInput, change: PolicyChange) -> None:
        applied = await workflow.execute_activity_method(
            GpuRunActivities.apply_warm_policy,
            ApplyScalingInput(
                function=change.function,
                gpu=inp.gpu,
                mode=change.to_mode,
                min_containers=change.min_containers,
                scaledown_window_s=change.scaledown_window_s,
            ),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
        )
        self._changes.append(change)
        gpu = inp.gpu
        events.emit(
            EventKind.WARM_POLICY_CHANGED,
            status=change.to_mode.value,
            message=f"{change.function}: {change.from_mode} -> {change.to_mode} ({change.reason})",
            details={
                "function": change.function,
                "gpu": gpu,
                "from_mode": change.from_mode.value,
                "to_mode": change.to_mode.value,
                "reason": change.reason,
                "min_containers": change.min_containers,
                "scaledown_window_s": change.scaledown_window_s,
                "applied": applied.applied,
                "applied_detail": applied.detail,
                "cold_starts_s": list(self._state.cold_starts),
                "cost_consequence": cost_consequence(change),
                "idle_usd_per_hour": str(applied.idle_usd_per_hour),
                "tail_usd_per_run": str(applied.tail_usd_per_run),
            },
        )


def cost_consequence(change: PolicyChange) -> str:
    """What the change does to idle spend, in words (the rate is in the price table)."""
    if change.min_containers:
        return (
            f"{change.min_containers} container(s) billed continuously while idle, plus up to "
            f"{change.scaledown_window_s}s of GPU time after each run"
        )
    return f"nothing billed while idle; up to {change.scaledown_window_s}s of GPU time after each run"
