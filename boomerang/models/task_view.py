"""A specialist task as its customer may see it: an allow-list, like the Charter row.

`TaskView` has no field a cost, a provider or a model name could land in, and is
built field by field (never by deleting keys from a richer object). The two free
parts are checked before they go out: `output` loses every key that names internal
facts (`customer_output`), and `summary` is dropped when it repeats a Ledger-only
value of the task (its provider, model or GPU) or names a blocked field — the
same skeleton match the Charter's messages go through (`message_guard`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from boomerang.store.message_guard import BLOCKED_NAMES, MIN_VALUE_LEN, fold

TaskState = Literal["running", "completed", "failed", "cancelled"]

# Output keys that carry what only the Ledger may hold (Paint_Ang's `render_with` is a model).
_INTERNAL_KEYS = frozenset(fold(k) for k in (*BLOCKED_NAMES, "model", "models", "render_with", "usage"))


class TaskView(BaseModel):
    """`GET /tasks/{task_id}`: where the task is and, once it ended, what it produced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str
    status: TaskState = Field(description="running | completed | failed | cancelled")
    task_type: str | None = None
    boomer_ang_id: str | None = None
    message: str = Field(default="", description="The latest Charter message of the task.")
    output: dict[str, JsonValue] | None = None
    summary: str | None = None
    execution_time_s: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def customer_output(value: JsonValue) -> JsonValue:
    """`value` without the keys, at any depth, that name a cost, provider, model or usage."""
    if isinstance(value, dict):
        return {k: customer_output(v) for k, v in value.items() if fold(k) not in _INTERNAL_KEYS}
    if isinstance(value, list):
        return [customer_output(v) for v in value]
    return value


def customer_summary(summary: str, ledger_values: Iterable[str]) -> str | None:
    """`summary`, or None when it names a blocked field or repeats a Ledger-only value."""
    skeleton = fold(summary)
    if any(fold(name) in skeleton for name in BLOCKED_NAMES):
        return None
    for value in ledger_values:
        needle = fold(value)
        if len(needle) >= MIN_VALUE_LEN and needle in skeleton:
            return None
    return summary
