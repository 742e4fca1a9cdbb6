"""The warm policy of a GPU function: cold, hybrid or hot, decided from its recent runs.

Pure (no Temporal, no clock): the `GpuWarmPolicy` workflow feeds it observations and
the time, and carries out the changes it returns.

    state = PolicyState(function="gpu_exec_l4")
    state, change = observe(state, PolicyObservation(...), WarmPolicyConfig())
    state, change = idle_check(state, now, config)      # demotes after 30 min idle
    scaling(WarmMode.HOT, config)                       # Scaling(min_containers=1, scaledown_window_s=1200)

Modes (the seed's defaults): `cold` keeps nothing (containers leave after 2 s idle);
`hybrid`, the base mode, keeps a container 600 s after use; `hot` keeps one warm at
all times and others 1,200 s after use. A function is promoted to hot after 4 runs
within 15 minutes, or when the median of its last 5 cold starts (at least 3 of them)
exceeds 45 s; it is demoted to its base mode after 30 minutes without a run.
`--hot-mode on` promotes at once, `off` demotes at once (and that run does not count
towards a promotion), `auto` leaves it to these rules.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from boomerang.models.gpu_runs import HotMode, PolicyObservation, WarmMode


class WarmPolicyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    base_mode: WarmMode = WarmMode.HYBRID
    cold_scaledown_s: int = 2  # Modal's minimum
    hybrid_scaledown_s: int = 600
    hot_scaledown_s: int = 1200
    hot_min_containers: int = 1
    promote_runs: int = 4
    promote_window_s: float = 15 * 60
    promote_cold_start_s: float = 45.0
    cold_start_sample: int = 5
    cold_start_min_sample: int = 3
    demote_idle_s: float = 30 * 60


class PolicyState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    function: str
    mode: WarmMode = WarmMode.HYBRID
    reason: str = "base mode"
    changed_at: datetime | None = None
    last_run_at: datetime | None = None
    recent_runs: tuple[datetime, ...] = ()
    cold_starts: tuple[float, ...] = ()
    runs_seen: int = Field(default=0, ge=0)


class WarmPolicyInput(BaseModel):
    """Input of the `GpuWarmPolicy` workflow (one per GPU function); `state` carries over
    continue-as-new."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    function: str
    gpu: str
    state: PolicyState | None = None
    config: WarmPolicyConfig = WarmPolicyConfig()
    # Histories renewed so far (continue-as-new): keeps each generation's event keys apart.
    generation: int = Field(default=0, ge=0)


@dataclass(frozen=True)
class Scaling:
    min_containers: int
    scaledown_window_s: int


class PolicyChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    function: str
    from_mode: WarmMode
    to_mode: WarmMode
    reason: str
    at: datetime
    min_containers: int
    scaledown_window_s: int


def scaling(mode: WarmMode, config: WarmPolicyConfig) -> Scaling:
    if mode is WarmMode.HOT:
        return Scaling(config.hot_min_containers, config.hot_scaledown_s)
    if mode is WarmMode.HYBRID:
        return Scaling(0, config.hybrid_scaledown_s)
    return Scaling(0, config.cold_scaledown_s)


def idle_cost_per_hour(mode: WarmMode, config: WarmPolicyConfig, gpu_rate_per_s: Decimal) -> Decimal:
    """What the mode bills with no run at all: its always-warm containers, per hour."""
    return scaling(mode, config).min_containers * gpu_rate_per_s * 3600


def tail_cost_per_run(mode: WarmMode, config: WarmPolicyConfig, gpu_rate_per_s: Decimal) -> Decimal:
    """At most what one run's container bills idling before it scales down."""
    return scaling(mode, config).scaledown_window_s * gpu_rate_per_s


def median_cold_start(state: PolicyState, config: WarmPolicyConfig) -> float | None:
    recent = state.cold_starts[-config.cold_start_sample :]
    return statistics.median(recent) if len(recent) >= config.cold_start_min_sample else None


def observe(
    state: PolicyState, obs: PolicyObservation, config: WarmPolicyConfig
) -> tuple[PolicyState, PolicyChange | None]:
    """Learn from one run; return the new state and the change it causes, if any."""
    window_start = obs.at - timedelta(seconds=config.promote_window_s)
    counts = obs.hot_mode is not HotMode.OFF
    runs = tuple(t for t in (*state.recent_runs, *((obs.at,) if counts else ())) if t > window_start)
    colds = state.cold_starts
    if obs.cold_start and obs.start_s is not None:
        colds = (*colds, round(obs.start_s, 3))[-config.cold_start_sample :]
    state = state.model_copy(
        update={
            "last_run_at": obs.at,
            "recent_runs": runs,
            "cold_starts": colds,
            "runs_seen": state.runs_seen + 1,
        }
    )
    if obs.hot_mode is HotMode.ON:
        return _to(state, WarmMode.HOT, f"--hot-mode on (run {obs.run_id})", obs.at, config)
    if obs.hot_mode is HotMode.OFF:
        return _to(state, config.base_mode, f"--hot-mode off (run {obs.run_id})", obs.at, config)
    if state.mode is WarmMode.HOT:
        return state, None
    if len(runs) >= config.promote_runs:
        minutes = config.promote_window_s / 60
        return _to(state, WarmMode.HOT, f"{len(runs)} runs within {minutes:g} minutes", obs.at, config)
    median = median_cold_start(state, config)
    if median is not None and median > config.promote_cold_start_s:
        reason = (
            f"median of the last {len(state.cold_starts)} cold starts {median:g}s "
            f"exceeds {config.promote_cold_start_s:g}s"
        )
        return _to(state, WarmMode.HOT, reason, obs.at, config)
    return state, None


def idle_deadline(state: PolicyState, config: WarmPolicyConfig) -> datetime | None:
    """When a hot function is demoted if no run comes before then; None when not hot."""
    if state.mode is not WarmMode.HOT or state.last_run_at is None:
        return None
    since = max(state.last_run_at, state.changed_at or state.last_run_at)
    return since + timedelta(seconds=config.demote_idle_s)


def idle_check(
    state: PolicyState, now: datetime, config: WarmPolicyConfig
) -> tuple[PolicyState, PolicyChange | None]:
    deadline = idle_deadline(state, config)
    if deadline is None or now < deadline:
        return state, None
    minutes = config.demote_idle_s / 60
    return _to(state, config.base_mode, f"idle for {minutes:g} minutes", now, config)


def _to(
    state: PolicyState, mode: WarmMode, reason: str, at: datetime, config: WarmPolicyConfig
) -> tuple[PolicyState, PolicyChange | None]:
    if state.mode is mode:
        return state, None
    change = PolicyChange(
        function=state.function,
        from_mode=state.mode,
        to_mode=mode,
        reason=reason,
        at=at,
        min_containers=scaling(mode, config).min_containers,
        scaledown_window_s=scaling(mode, config).scaledown_window_s,
    )
    # A demoted function starts counting afresh: the runs that promoted it are spent.
    runs = state.recent_runs if mode is WarmMode.HOT else ()
    new = state.model_copy(update={"mode": mode, "reason": reason, "changed_at": at, "recent_runs": runs})
    return new, change
