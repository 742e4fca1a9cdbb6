"""Values as PostgreSQL will store and give them back, so hashes survive a round trip.

PostgreSQL text cannot hold NUL, and UTF-8 cannot hold lone surrogates: both
become U+FFFD (and a non-finite float in details its name) before anything is
written or hashed, rather than failing a run over a stray byte in a traceback.
Naive datetimes are taken as UTC.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import overload

from pydantic import JsonValue

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@overload
def pg_text(value: str) -> str: ...
@overload
def pg_text(value: None) -> None: ...
def pg_text(value: str | None) -> str | None:
    return None if value is None else _UNSTORABLE.sub("\ufffd", value)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def pg_json(value: JsonValue) -> JsonValue:
    """`value` with every string (keys included) made storable in jsonb."""
    if isinstance(value, str):
        return pg_text(value)
    if isinstance(value, dict):
        return {pg_text(k): pg_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pg_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON (and so jsonb) has no NaN or Infinity
    return value
