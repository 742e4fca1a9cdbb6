"""ConcurrencyLimits: bounds per function, per GPU class and overall; options checked early."""

from __future__ import annotations

import asyncio

import pytest

from activities.limits import ConcurrencyLimits, gpu_class


class Gauge:
    """Counts how many holders are inside at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.gate = asyncio.Event()

    async def hold(self, limits: ConcurrencyLimits, *, function: str, gpu: str | None = None) -> None:
        async with limits.slot(function=function, gpu=gpu):
            self.now += 1
            self.peak = max(self.peak, self.now)
            await self.gate.wait()
            self.now -= 1


async def run_all(gauge: Gauge, limits: ConcurrencyLimits, calls: list[tuple[str, str | None]]) -> None:
    tasks = [asyncio.create_task(gauge.hold(limits, function=f, gpu=g)) for f, g in calls]
    # Every task has run up to its slot (inside, or waiting for one) once the loop idles.
    for _ in range(len(calls) * 4):
        await asyncio.sleep(0)
    gauge.gate.set()
    await asyncio.gather(*tasks)


@pytest.mark.parametrize(
    ("limits", "calls", "peak"),
    [
        (ConcurrencyLimits(default=2), [("a", None)] * 5, 2),
        (ConcurrencyLimits(default=2), [("a", None)] * 3 + [("b", None)] * 3, 4),
        (ConcurrencyLimits(per_function={"a": 1}), [("a", None)] * 3 + [("b", None)] * 3, 4),
        (
            ConcurrencyLimits(per_gpu={"A10G": 3}),
            [("a", "A10G"), ("b", "a10g:2")] * 3 + [("c", "H100")] * 2,
            5,
        ),
        (ConcurrencyLimits(total=3), [("a", None), ("b", "T4")] * 4, 3),
        (ConcurrencyLimits(), [("a", None)] * 6, 6),
    ],
    ids=["default", "default-is-per-function", "per-function", "per-gpu-class", "total", "unbounded"],
)
async def test_peak_in_flight_is_bounded(
    limits: ConcurrencyLimits, calls: list[tuple[str, str | None]], peak: int
) -> None:
    gauge = Gauge()
    await run_all(gauge, limits, calls)
    assert gauge.peak == peak


async def test_a_cancelled_waiter_or_holder_gives_its_slots_back() -> None:
    limits = ConcurrencyLimits(default=1, per_gpu={"T4": 1})
    gauge = Gauge()
    holder = asyncio.create_task(gauge.hold(limits, function="a", gpu="T4"))
    waiter = asyncio.create_task(gauge.hold(limits, function="b", gpu="T4"))  # has "b", waits on T4
    while gauge.now == 0:
        await asyncio.sleep(0)
    holder.cancel()
    waiter.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    gauge.gate.set()
    await asyncio.wait_for(
        asyncio.gather(
            gauge.hold(limits, function="a", gpu="T4"), gauge.hold(limits, function="b", gpu="T4")
        ),
        5,
    )


@pytest.mark.parametrize(
    "options",
    [
        {"default": 0},
        {"total": -1},
        {"per_function": {"a": 0}},
        {"per_gpu": {"A10G": 0}},
        {"per_gpu": {" ": 2}},
    ],
)
def test_bad_options_fail_early(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        ConcurrencyLimits(**options)  # type: ignore[arg-type]


def test_gpu_class_ignores_case_and_count() -> None:
    assert gpu_class("a10g:2") == "A10G"
    assert gpu_class(" H100 ") == "H100"
    assert gpu_class(None) is None
    assert gpu_class("") is None
