"""What a sweep's items are and in which order they go: pure (no Temporal, no I/O).

Items are named by index. A grid's items are never listed: item `i` is decoded from
`i` in mixed radix over the axes (the `batch_by` axis most significant, so a batch is
a contiguous run of indices), which keeps a 10,000-item sweep's workflow input and
state a few hundred bytes. Explicit items keep their line number as index; with
`batch_by` they are dispatched grouped by that value, batches in order of first
appearance.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from boomerang.models.sweeps import MAX_ITEMS, MAX_ITEMS_JSON_BYTES, SweepSpec
from modal_app.errors import BoomerangError


class SweepSpecError(BoomerangError, ValueError):
    """A sweep that cannot start, with what is wrong in words a user can act on."""


def batch_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class SweepPlan:
    spec: SweepSpec
    total: int
    # Grid: axes in decode order (batch axis first). Items: dispatch order (item indices).
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    order: tuple[int, ...] | None

    @classmethod
    def of(cls, spec: SweepSpec) -> SweepPlan:
        check_shape(spec)
        if spec.grid is not None:
            names = list(spec.grid)
            if spec.batch_by is not None:
                names.remove(spec.batch_by)
                names.insert(0, spec.batch_by)
            axes = tuple((n, tuple(spec.grid[n])) for n in names)
            return cls(spec, math.prod(len(v) for _, v in axes), axes, None)
        items = spec.items or []
        order: tuple[int, ...] = tuple(range(len(items)))
        if spec.batch_by is not None:
            first: dict[str, int] = {}
            for item in items:
                first.setdefault(batch_key(item[spec.batch_by]), len(first))
            order = tuple(sorted(order, key=lambda i: first[batch_key(items[i][spec.batch_by or ""])]))
        return cls(spec, len(items), (), order)

    def index_at(self, position: int) -> int:
        """The item dispatched at `position`."""
        return position if self.order is None else self.order[position]

    def params(self, index: int) -> dict[str, Any]:
        if self.order is not None:
            return dict((self.spec.items or [])[index])
        out: dict[str, Any] = {}
        rest = index
        for name, values in reversed(self.axes):
            rest, digit = divmod(rest, len(values))
            out[name] = values[digit]
        return {name: out[name] for name in (self.spec.grid or {})}

    def payload(self, index: int) -> dict[str, Any]:
        params = self.params(index)
        if self.spec.variant_axis is not None:
            params.pop(self.spec.variant_axis, None)
        return {**self.spec.base, **params}

    def function_of(self, index: int) -> str | None:
        """The variant's function when an axis selects it, else None (the sweep's own)."""
        if self.spec.variant_axis is None:
            return None
        return str(self.params(index)[self.spec.variant_axis])

    def batch_of(self, index: int) -> str | None:
        by = self.spec.batch_by
        return None if by is None else batch_key(self.params(index)[by])

    def batches(self) -> list[tuple[str, int]]:
        """Batch keys in dispatch order, with their sizes."""
        by = self.spec.batch_by
        if by is None:
            return []
        if self.order is None:
            values = dict(self.axes)[by]
            size = self.total // len(values)
            return [(batch_key(v), size) for v in values]
        sizes: dict[str, int] = {}
        for i in self.order:
            key = batch_key((self.spec.items or [])[i][by])
            sizes[key] = sizes.get(key, 0) + 1
        return list(sizes.items())

    def batch_end(self, position: int) -> int:
        """The first position after the batch of the item at `position` (a chunk stops there)."""
        if self.spec.batch_by is None:
            return self.total
        ends = self._batch_ends
        return ends[bisect.bisect_right(ends, position)]

    @cached_property
    def _batch_ends(self) -> tuple[int, ...]:
        ends, at = [], 0
        for _, size in self.batches():
            at += size
            ends.append(at)
        return tuple(ends)

    def positions(self, start: int = 0) -> Iterator[int]:
        return iter(range(start, self.total))

    def tracked_axes(self) -> dict[str, list[str]]:
        """Axes counted per value in progress: the grid's axes, or the batch axis of items."""
        if self.order is None:
            return {n: [batch_key(v) for v in values] for n, values in self.axes}
        if self.spec.batch_by is not None:
            return {self.spec.batch_by: [k for k, _ in self.batches()]}
        return {}


def check_shape(spec: SweepSpec) -> None:
    """Everything about a spec that needs no registry; raises `SweepSpecError`."""
    if (spec.function is None) == (spec.task_type is None):
        raise SweepSpecError("give exactly one of function or task_type")
    if (spec.grid is None) == (spec.items is None):
        raise SweepSpecError("give exactly one of grid or items")
    if spec.max_parallel < 1:
        raise SweepSpecError(f"max_parallel must be at least 1 (got {spec.max_parallel})")
    axes: list[str]
    if spec.grid is not None:
        if not spec.grid:
            raise SweepSpecError("the grid is empty: give at least one axis with values")
        empty = [name for name, values in spec.grid.items() if not values]
        if empty:
            raise SweepSpecError(f"the grid is empty: axis {', '.join(map(repr, empty))} has no values")
        size = math.prod(len(v) for v in spec.grid.values())
        if size > MAX_ITEMS:
            raise SweepSpecError(f"the grid has {size:,} items; the limit is {MAX_ITEMS:,} per sweep")
        axes = list(spec.grid)
    else:
        items = spec.items or []
        if not items:
            raise SweepSpecError("no items: the items list is empty")
        if len(items) > MAX_ITEMS:
            raise SweepSpecError(f"{len(items):,} items; the limit is {MAX_ITEMS:,} per sweep")
        size_bytes = len(json.dumps(items))
        if size_bytes > MAX_ITEMS_JSON_BYTES:
            raise SweepSpecError(
                f"the items are {size_bytes:,} bytes of JSON; the limit is {MAX_ITEMS_JSON_BYTES:,}"
                " (use a grid, or split the sweep)"
            )
        axes = sorted({k for item in items for k in item})
        for name in (spec.batch_by, spec.variant_axis):
            missing = [i for i, item in enumerate(items) if name is not None and name not in item]
            if name is not None and missing:
                raise SweepSpecError(f"items {_few(missing)} have no {name!r}")
    for what, name in (("batch_by", spec.batch_by), ("variant_axis", spec.variant_axis)):
        if name is not None and name not in axes:
            raise SweepSpecError(f"{what} axis {name!r} is not in the grid; axes: {', '.join(axes)}")
    if spec.variant_axis is not None and spec.task_type is not None:
        raise SweepSpecError("variant_axis selects compute functions; use it with function, not task_type")


def _few(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:10])
    return shown + (f" and {len(indices) - 10} more" if len(indices) > 10 else "")
