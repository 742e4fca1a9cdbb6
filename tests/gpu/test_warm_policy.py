"""The warm policy's rules, as a pure state machine (the seed's defaults)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from boomerang.models.gpu_runs import HotMode, PolicyObservation, WarmMode
from boomerang.warm_policy import PolicyState, WarmPolicyConfig, idle_check, idle_deadline, observe, scaling

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
CONFIG = WarmPolicyConfig()


def _run(
    minute: float, *, cold_s: float | None = None, hot_mode: HotMode = HotMode.AUTO
) -> PolicyObservation:
    return PolicyObservation(
        run_id=f"r{minute:g}", at=T0 + timedelta(minutes=minute), cold_start=cold_s is not None,
        start_s=cold_s, hot_mode=hot_mode,
    )  # fmt: skip


def _feed(*runs: PolicyObservation) -> tuple[PolicyState, list[str]]:
    state, reasons = PolicyState(function="gpu_exec_l4"), []
    for obs in runs:
        state, change = observe(state, obs, CONFIG)
        if change is not None:
            reasons.append(f"{change.to_mode}: {change.reason}")
    return state, reasons


def test_the_seed_defaults() -> None:
    assert scaling(WarmMode.HYBRID, CONFIG) == scaling(CONFIG.base_mode, CONFIG)
    hybrid, hot = scaling(WarmMode.HYBRID, CONFIG), scaling(WarmMode.HOT, CONFIG)
    assert (hybrid.min_containers, hybrid.scaledown_window_s) == (0, 600)
    assert (hot.min_containers, hot.scaledown_window_s) == (1, 1200)


def test_four_runs_within_15_minutes_promote_and_four_spread_out_do_not() -> None:
    state, reasons = _feed(_run(0), _run(4), _run(9), _run(14))
    assert state.mode is WarmMode.HOT and reasons == ["hot: 4 runs within 15 minutes"]
    state, reasons = _feed(_run(0), _run(6), _run(12), _run(18))
    assert state.mode is WarmMode.HYBRID and reasons == []


def test_slow_cold_starts_promote_on_their_median() -> None:
    # Recorded figures: the median of the last cold starts must exceed 45 s, with three at least.
    state, reasons = _feed(_run(0, cold_s=52.0), _run(30, cold_s=47.5))
    assert reasons == []  # two are not enough to judge
    state, reasons = _feed(_run(0, cold_s=52.0), _run(30, cold_s=47.5), _run(60, cold_s=61.2))
    assert reasons == ["hot: median of the last 3 cold starts 52s exceeds 45s"]
    assert state.cold_starts == (52.0, 47.5, 61.2)
    _, reasons = _feed(_run(0, cold_s=12.0), _run(30, cold_s=14.5), _run(60, cold_s=61.2))
    assert reasons == []


def test_idle_for_30_minutes_demotes() -> None:
    state, _ = _feed(_run(0), _run(1), _run(2), _run(3))
    assert idle_deadline(state, CONFIG) == T0 + timedelta(minutes=33)
    assert idle_check(state, T0 + timedelta(minutes=32), CONFIG)[1] is None
    state, change = idle_check(state, T0 + timedelta(minutes=33), CONFIG)
    assert change is not None and (change.to_mode, change.reason) == (WarmMode.HYBRID, "idle for 30 minutes")
    assert state.recent_runs == () and idle_deadline(state, CONFIG) is None


def test_hot_mode_overrides() -> None:
    state, reasons = _feed(_run(0, hot_mode=HotMode.ON))
    assert state.mode is WarmMode.HOT and reasons == ["hot: --hot-mode on (run r0)"]
    state, reasons = _feed(_run(0), _run(1), _run(2), _run(3), _run(4, hot_mode=HotMode.OFF))
    assert state.mode is WarmMode.HYBRID and reasons[-1] == "hybrid: --hot-mode off (run r4)"
    state, _ = observe(state, _run(5), CONFIG)
    assert state.mode is WarmMode.HYBRID  # the demoted function counts afresh
