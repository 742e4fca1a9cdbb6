"""Crunch_Ang's numerics: describe a numeric dataset, correlate it, regress a target.

    analyze({"x": [1, 2, 3, 4], "y": [2.1, 3.9, 6.2, 7.8]}, target="y")

Per column: count, missing, mean, sample std (ddof=1), min, max, quantiles (linear
interpolation, as NumPy's default). Pearson correlations and the least-squares fit of
`target` on the other columns use the rows where every column has a value. Outliers
are values whose z-score (against their column's mean and sample std) exceeds the
threshold. Missing values are `None`.

The work runs on a GPU when one is usable (CuPy, else PyTorch; see `gpu.py`), in
float64, and the result says which device did it. Pure NumPy otherwise: the answers
agree to floating-point rounding. This module needs only NumPy, so it can be checked
on a bare GPU machine.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from modal_app.gpu import ArrayDevice, array_device

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_OUTLIERS_LISTED = 100


class _Ops(Protocol):
    """The handful of array operations the analysis needs, on one device."""

    def put(self, a: np.ndarray) -> Any: ...
    def valid(self, m: Any, j: int) -> Any: ...
    def describe(self, v: Any, qs: Sequence[float]) -> tuple[float, float, float, float, list[float]]: ...
    def complete_rows(self, m: Any) -> Any: ...
    def corr(self, m: Any) -> np.ndarray: ...
    def fit(self, x: Any, y: Any) -> tuple[np.ndarray, float]: ...
    def beyond(self, m: Any, j: int, mean: float, std: float, t: float) -> tuple[np.ndarray, np.ndarray]: ...


class _ArrayApiOps:
    """NumPy and CuPy share one API; `host` brings a result back to NumPy."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def host(self, a: Any) -> np.ndarray:
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def put(self, a: np.ndarray) -> Any:
        return self.xp.asarray(a, dtype=self.xp.float64)

    def valid(self, m: Any, j: int) -> Any:
        col = m[:, j]
        return col[~self.xp.isnan(col)]

    def describe(self, v: Any, qs: Sequence[float]) -> tuple[float, float, float, float, list[float]]:
        xp = self.xp
        std = float(xp.std(v, ddof=1)) if v.shape[0] > 1 else math.nan
        quants = self.host(xp.quantile(v, xp.asarray(qs, dtype=xp.float64)))
        return float(xp.mean(v)), std, float(xp.min(v)), float(xp.max(v)), [float(q) for q in quants]

    def complete_rows(self, m: Any) -> Any:
        return m[~self.xp.isnan(m).any(axis=1)]

    def corr(self, m: Any) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.atleast_2d(self.host(self.xp.corrcoef(m, rowvar=False)))

    def fit(self, x: Any, y: Any) -> tuple[np.ndarray, float]:
        xp = self.xp
        coef = xp.linalg.pinv(x) @ y
        resid = y - x @ coef
        total = xp.sum((y - xp.mean(y)) ** 2)
        r2 = 1.0 - float(xp.sum(resid**2)) / float(total) if float(total) > 0 else math.nan
        return self.host(coef), r2

    def beyond(self, m: Any, j: int, mean: float, std: float, t: float) -> tuple[np.ndarray, np.ndarray]:
        xp = self.xp
        z = (m[:, j] - mean) / std
        hit = xp.nonzero(xp.abs(z) > t)[0]  # NaN compares False: missing values never hit
        return self.host(hit), self.host(z[hit])


class _TorchOps:
    """The same operations in PyTorch, for GPU images that carry it rather than CuPy."""

    def __init__(self) -> None:
        # Only on a machine where gpu.py found it usable.
        self.torch = importlib.import_module("torch")

    def put(self, a: np.ndarray) -> Any:
        return self.torch.as_tensor(a, dtype=self.torch.float64, device="cuda")

    def valid(self, m: Any, j: int) -> Any:
        col = m[:, j]
        return col[~self.torch.isnan(col)]

    def describe(self, v: Any, qs: Sequence[float]) -> tuple[float, float, float, float, list[float]]:
        t = self.torch
        std = float(v.std(correction=1)) if v.shape[0] > 1 else math.nan
        quants = t.quantile(v, t.tensor(list(qs), dtype=t.float64, device=v.device))
        return float(v.mean()), std, float(v.min()), float(v.max()), quants.cpu().tolist()

    def complete_rows(self, m: Any) -> Any:
        return m[~self.torch.isnan(m).any(dim=1)]

    def corr(self, m: Any) -> np.ndarray:
        result: np.ndarray = np.atleast_2d(self.torch.corrcoef(m.T).cpu().numpy())
        return result

    def fit(self, x: Any, y: Any) -> tuple[np.ndarray, float]:
        t = self.torch
        coef = t.linalg.pinv(x) @ y
        resid = y - x @ coef
        total = float(((y - y.mean()) ** 2).sum())
        r2 = 1.0 - float((resid**2).sum()) / total if total > 0 else math.nan
        return coef.cpu().numpy(), r2

    def beyond(self, m: Any, j: int, mean: float, std: float, t: float) -> tuple[np.ndarray, np.ndarray]:
        z = (m[:, j] - mean) / std
        hit = self.torch.nonzero(z.abs() > t).flatten()
        return hit.cpu().numpy(), z[hit].cpu().numpy()


def _ops_for(device: ArrayDevice) -> _Ops:
    if device.library == "cupy":
        return _ArrayApiOps(importlib.import_module("cupy"))
    if device.library == "torch":
        return _TorchOps()
    return _ArrayApiOps(np)


def _num(x: float) -> float | None:
    """JSON has no NaN or infinity: undefined statistics are null."""
    return x if math.isfinite(x) else None


def rows_to_columns(rows: Sequence[Mapping[str, float | None]]) -> dict[str, list[float | None]]:
    """Row records -> columns, in order of first appearance; a missing key is a missing value."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    return {n: [row.get(n) for row in rows] for n in names}


def _matrix(columns: Mapping[str, Sequence[float | None]]) -> np.ndarray:
    if not columns:
        raise ValueError("payload.columns must name at least one column")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"payload.columns must all have the same length, got {lengths}")
    if next(iter(lengths.values())) < 2:
        raise ValueError("payload.columns need at least 2 rows")
    m = np.array([[math.nan if v is None else v for v in vals] for vals in columns.values()], dtype=float).T
    bad = np.isinf(m)
    if bad.any():
        name = list(columns)[int(np.argwhere(bad)[0][1])]
        raise ValueError(f"payload.columns.{name} holds an infinite value")
    return m


def analyze(
    columns: Mapping[str, Sequence[float | None]],
    *,
    target: str | None = None,
    z_threshold: float = 3.0,
    quantiles: Sequence[float] = QUANTILES,
    device: ArrayDevice | None = None,
) -> dict[str, Any]:
    """Describe, correlate and (given `target`) regress; raises ValueError naming the field."""
    names = list(columns)
    if target is not None and target not in columns:
        raise ValueError(f"payload.target {target!r} is not a column; columns: {', '.join(names)}")
    if not z_threshold > 0:
        raise ValueError("payload.z_threshold must be positive")
    host = _matrix(columns)
    device = device or array_device()
    ops = _ops_for(device)
    m = ops.put(host)
    warnings: list[str] = []

    stats: dict[str, Any] = {}
    for j, name in enumerate(names):
        v = ops.valid(m, j)
        count = int(v.shape[0])
        entry: dict[str, Any] = {"count": count, "missing": host.shape[0] - count}
        if count == 0:
            warnings.append(f"column {name!r} has no values")
            stats[name] = entry | {"mean": None, "std": None, "min": None, "max": None, "quantiles": {}}
            continue
        mean, std, lo, hi, qv = ops.describe(v, quantiles)
        qmap = {f"p{round(q * 100):02d}": _num(x) for q, x in zip(quantiles, qv, strict=True)}
        stats[name] = entry | {
            "mean": _num(mean),
            "std": _num(std),
            "min": lo,
            "max": hi,
            "quantiles": qmap,
        }

    complete = ops.complete_rows(m)
    n_complete = int(complete.shape[0])
    corr = ops.corr(complete) if n_complete >= 2 else np.full((len(names), len(names)), math.nan)
    correlations = {
        "method": "pearson",
        "rows_used": n_complete,
        "matrix": {a: {b: _num(float(corr[i, k])) for k, b in enumerate(names)} for i, a in enumerate(names)},
    }

    return {
        "device": device.device,
        "library": device.library,
        "rows": int(host.shape[0]),
        "columns": stats,
        "correlations": correlations,
        "regression": _regression(ops, complete, names, stats, target, warnings),
        "outliers": _outliers(ops, m, host, names, stats, z_threshold),
        "warnings": warnings,
    }


def _regression(
    ops: _Ops, complete: Any, names: list[str], stats: dict[str, Any], target: str | None, warnings: list[str]
) -> Any:
    if target is None:
        return None
    # A constant column is collinear with the intercept: it would only split it in two.
    constant = [n for n in names if n != target and not stats[n]["std"]]
    if constant:
        warnings.append(f"regression leaves out constant or empty columns: {', '.join(constant)}")
    features = [n for n in names if n != target and n not in constant]
    n = int(complete.shape[0])
    if not features or n < len(features) + 2:
        warnings.append(f"regression of {target!r} needs a feature and more complete rows than features + 1")
        return None
    t = names.index(target)
    idx = [names.index(f) for f in features]
    design = ops.put(np.ones((n, len(features) + 1)))
    design[:, 1:] = complete[:, idx]
    coef, r2 = ops.fit(design, complete[:, t])
    return {
        "target": target,
        "features": features,
        "intercept": float(coef[0]),
        "coefficients": {f: float(c) for f, c in zip(features, coef[1:], strict=True)},
        "r_squared": _num(r2),
        "rows_used": n,
    }


def _outliers(
    ops: _Ops, m: Any, host: np.ndarray, names: list[str], stats: dict[str, Any], t: float
) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for j, name in enumerate(names):
        mean, std = stats[name]["mean"], stats[name]["std"]
        if mean is None or not std:
            continue
        rows, zs = ops.beyond(m, j, mean, std, t)
        items += [
            {"column": name, "row": int(r), "value": float(host[int(r), j]), "z": float(z)}
            for r, z in zip(rows, zs, strict=True)
        ]
    items.sort(key=lambda i: -abs(i["z"]))
    return {"z_threshold": t, "total": len(items), "items": items[:MAX_OUTLIERS_LISTED]}
