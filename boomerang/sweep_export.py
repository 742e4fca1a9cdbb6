"""A sweep's results as JSONL or CSV, one line per item: `boomerang sweep results` and
`GET /sweeps/{id}/results` write the same lines.

    async for line in export_lines(rows, "csv"):
        out.write(line)

CSV has one column per `SweepResult` field; `params` and `output` are JSON text in
their cell, so a row round-trips whatever the items' shapes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Literal

from boomerang.models.sweeps import SweepResult

ExportFormat = Literal["jsonl", "csv"]
FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv")
COLUMNS = tuple(SweepResult.model_fields)
MEDIA_TYPES: dict[ExportFormat, str] = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def _cells(data: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in data.items()}


def csv_line(values: dict[str, Any] | None) -> str:
    """One CSV line: the header when `values` is None."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    if values is None:
        writer.writeheader()
    else:
        writer.writerow(_cells(values))
    return buffer.getvalue()


async def export_lines(rows: AsyncIterable[SweepResult], fmt: ExportFormat) -> AsyncIterator[str]:
    """Each row as one line of `fmt` (CSV: a header first, even for no rows)."""
    if fmt == "csv":
        yield csv_line(None)
    async for row in rows:
        data = row.model_dump(mode="json")
        yield json.dumps(data) + "\n" if fmt == "jsonl" else csv_line(data)
