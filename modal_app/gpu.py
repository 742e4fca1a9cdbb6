"""Which accelerator this process can use, found without importing what is not installed.

Kept free of pydantic and of the rest of `modal_app` so numeric code can run (and be
checked) on a bare GPU machine. The choice is cached: probing CUDA is not free.

`BOOMERANG_ARRAY_DEVICE=cpu` forces NumPy (useful to compare results or to leave the
GPU to other work); `cuda` insists on a GPU and fails loudly when there is none.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Literal

ArrayLibrary = Literal["cupy", "torch", "numpy"]


@dataclass(frozen=True)
class ArrayDevice:
    """The array library to compute with and the device it runs on."""

    library: ArrayLibrary
    device: str  # "cpu" or "cuda:<GPU name>"

    @property
    def is_gpu(self) -> bool:
        return self.device.startswith("cuda")


CPU = ArrayDevice("numpy", "cpu")


def _cupy_device() -> ArrayDevice | None:
    if importlib.util.find_spec("cupy") is None:
        return None
    try:
        cupy = importlib.import_module("cupy")  # optional: only where a GPU image installs it

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    except Exception:  # no driver, no device, broken install: all mean "not usable here"
        return None
    return ArrayDevice("cupy", f"cuda:{name}")


def _torch_device() -> ArrayDevice | None:
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        torch = importlib.import_module("torch")  # optional and slow to import: only when asked

        if not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name(0)
    except Exception:  # see _cupy_device
        return None
    return ArrayDevice("torch", f"cuda:{name}")


@functools.cache
def array_device(preference: str | None = None) -> ArrayDevice:
    """The best device here: CuPy on a GPU, else PyTorch on a GPU, else NumPy on the CPU."""
    wanted = (preference or os.environ.get("BOOMERANG_ARRAY_DEVICE") or "auto").lower()
    if wanted not in ("auto", "cpu", "cuda"):
        raise ValueError(f"BOOMERANG_ARRAY_DEVICE must be auto, cpu or cuda, not {wanted!r}")
    if wanted == "cpu":
        return CPU
    found = _cupy_device() or _torch_device()
    if found is None and wanted == "cuda":
        raise RuntimeError("a CUDA device was required, but neither CuPy nor PyTorch can use one here")
    return found or CPU
