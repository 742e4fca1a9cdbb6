"""Crunch_Ang's numerics agree across devices: NumPy on the CPU and CuPy/PyTorch on a GPU.

Skipped where no GPU is usable (CI); run on a GPU machine to check the device paths.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modal_app.analysis import analyze
from modal_app.gpu import CPU, ArrayDevice, _cupy_device, _torch_device, array_device


def dataset() -> dict[str, list[float | None]]:
    rng = np.random.default_rng(11)
    a = rng.normal(0, 1, 5000)
    b = 2 * a + rng.normal(0, 0.5, 5000)
    c = rng.standard_t(3, 5000)
    cols: dict[str, list[float | None]] = {"a": a.tolist(), "b": b.tolist(), "c": c.tolist()}
    cols["c"][10] = None
    return cols


def gpu_devices() -> list[ArrayDevice]:
    return [d for d in (_cupy_device(), _torch_device()) if d is not None]


def assert_close(x: Any, y: Any) -> None:
    if isinstance(x, dict):
        assert x.keys() == y.keys()
        for k in x:
            assert_close(x[k], y[k])
    elif isinstance(x, list):
        assert len(x) == len(y)
        for i, j in zip(x, y, strict=True):
            assert_close(i, j)
    elif isinstance(x, float):
        assert y == pytest.approx(x, rel=1e-9, abs=1e-9)
    else:
        assert x == y


def test_cpu_is_forced_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    array_device.cache_clear()
    monkeypatch.setenv("BOOMERANG_ARRAY_DEVICE", "cpu")
    try:
        assert array_device() == CPU
        monkeypatch.setenv("BOOMERANG_ARRAY_DEVICE", "tpu")
        array_device.cache_clear()
        with pytest.raises(ValueError, match="must be auto, cpu or cuda"):
            array_device()
    finally:
        array_device.cache_clear()


@pytest.mark.skipif(not gpu_devices(), reason="no usable GPU (CuPy or PyTorch with CUDA) here")
@pytest.mark.parametrize("device", gpu_devices(), ids=lambda d: d.library)
def test_gpu_results_match_numpy(device: ArrayDevice) -> None:
    cpu = analyze(dataset(), target="b", device=CPU)
    gpu = analyze(dataset(), target="b", device=device)
    assert gpu["device"].startswith("cuda:") and gpu["library"] == device.library
    for key in ("rows", "columns", "correlations", "regression", "outliers", "warnings"):
        assert_close(cpu[key], gpu[key])
