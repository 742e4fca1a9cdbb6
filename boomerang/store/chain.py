"""The Ledger's hash chain: which fields a row hash covers and how they are encoded.

Each row's `row_hash` is the SHA-256 of a canonical encoding of its content,
`prev_hash` included, so editing, deleting or reordering any row breaks every
hash after it. The encoding must give the same bytes for a row before it is
written and after PostgreSQL hands it back:

* compact JSON with sorted keys, UTF-8, no ASCII escaping;
* timestamps as UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`;
* numeric columns (costs) as decimal strings without trailing zeros;
* numbers inside `details` as plain JSON numbers in that same fixed-point form,
  because jsonb keeps a number's value, not its spelling (`1e2` comes back `100`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

from boomerang.models.events import RunEvent
from boomerang.store.pg_values import as_utc, pg_json, pg_text

GENESIS = "0" * 64

# Every ledger column except row_hash, in table order; the hash covers all of them.
HASHED_COLUMNS: tuple[str, ...] = (
    "stream", "seq", "prev_hash", "event_key", "run_id", "tenant", "kind",
    "occurred_at", "recorded_at", "status", "phase", "checkpoint", "boomer_ang_id",
    "task_type", "execution_time_s", "message", "project_id", "deadline", "decision",
    "attempt", "approver", "gpu_seconds", "gpu_type", "gpu_cost", "cpu_cost",
    "memory_cost", "llm_cost", "total_cost", "provider", "model_name", "input_tokens",
    "output_tokens", "price_table_version", "details",
)  # fmt: skip
NUMERIC_COLUMNS = frozenset({"gpu_seconds", "gpu_cost", "cpu_cost", "memory_cost", "llm_cost", "total_cost"})


def decimal_text(value: Decimal) -> str:
    """`value` in fixed point without trailing zeros: one spelling per number."""
    if not value.is_finite():
        return str(value)
    if value == 0:
        return "0"
    exact = Context(prec=max(28, len(value.as_tuple().digits)))
    return format(value.normalize(exact), "f")


def _json_number(value: int | float | Decimal) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return json.dumps(str(value))
        value = Decimal(repr(value))
    elif isinstance(value, int):
        return str(value)
    return decimal_text(value)


def _encode(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float | Decimal):
        return _json_number(value)
    if isinstance(value, datetime):
        return json.dumps(as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if isinstance(value, dict):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_encode(k)}:{_encode(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    raise TypeError(f"cannot hash a {type(value).__name__}")


def canonical(content: Mapping[str, Any]) -> bytes:
    """The bytes a row hash is taken over (costs as decimal strings)."""
    fields = {
        name: (
            decimal_text(content[name])
            if name in NUMERIC_COLUMNS and content[name] is not None
            else content[name]
        )
        for name in HASHED_COLUMNS
    }
    return _encode(fields).encode("utf-8")


def row_hash(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def ledger_content(event: RunEvent, *, seq: int, prev_hash: str, recorded_at: datetime) -> dict[str, Any]:
    """The hashed content of the ledger row for `event`, as it will be stored."""
    cost = event.cost
    return {
        "stream": pg_text(event.run_id),
        "seq": seq,
        "prev_hash": prev_hash,
        "event_key": pg_text(event.event_key),
        "run_id": pg_text(event.run_id),
        "tenant": pg_text(event.tenant),
        "kind": event.kind.value,
        "occurred_at": as_utc(event.occurred_at),
        "recorded_at": recorded_at.astimezone(UTC),
        "status": pg_text(event.status),
        "phase": pg_text(event.phase),
        "checkpoint": pg_text(event.checkpoint),
        "boomer_ang_id": pg_text(event.boomer_ang_id),
        "task_type": pg_text(event.task_type),
        "execution_time_s": event.execution_time_s,
        "message": pg_text(event.message),
        "project_id": pg_text(event.project_id),
        "deadline": as_utc(event.deadline),
        "decision": pg_text(event.decision),
        "attempt": event.attempt,
        "approver": pg_text(event.approver),
        "gpu_seconds": cost.gpu_seconds if cost else None,
        "gpu_type": pg_text(cost.gpu_type) if cost else None,
        "gpu_cost": cost.gpu_cost if cost else None,
        "cpu_cost": cost.cpu_cost if cost else None,
        "memory_cost": cost.memory_cost if cost else None,
        "llm_cost": cost.llm_cost if cost else None,
        "total_cost": cost.total_cost if cost else None,
        "provider": pg_text(cost.provider) if cost else None,
        "model_name": pg_text(cost.model_name) if cost else None,
        "input_tokens": cost.input_tokens if cost else None,
        "output_tokens": cost.output_tokens if cost else None,
        "price_table_version": pg_text(cost.price_table_version) if cost else None,
        "details": pg_json(dict(event.details)),
    }


def details_from_db(text: str) -> Any:
    """jsonb text read back with exact numbers, as the hash saw them."""
    return json.loads(text, parse_float=Decimal)
